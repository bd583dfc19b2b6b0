import t from 'tap'
import { LexemeIndex } from './lexeme-index.js'
import { prefixQuery } from './base-index.js'

t.test('a prefix names exactly the chunks holding a lexeme that starts with it', async (t) => {
  const index = new LexemeIndex()
  index.add(0, ['rebat', 'quarter', 'paid'])
  index.add(1, ['regist', 'deal', 'protect'])
  index.add(2, ['registri', 'rebat'])
  index.add(3, ['re', 'r', '45'])
  t.same([...index.matches(['rebat'])].sort(), [0, 2])
  t.same([...index.matches(['regist'])].sort(), [1, 2], 'registri starts with regist')
  t.same([...index.matches(['re'])].sort(), [0, 1, 2, 3], 'a two-letter prefix reaches every bucket under it')
  t.same([...index.matches(['r'])].sort(), [0, 1, 2, 3])
  t.same([...index.matches(['4'])], [3])
  t.same([...index.matches(['rebate'])], [], 'a longer prefix than the lexeme matches nothing')
  t.same([...index.matches(['paid', 'deal'])].sort(), [0, 1], 'an OR of prefixes')
  t.equal(index.count(['rebat']), 2)
  t.equal(index.count(['zzz']), 0)
})

t.test('prefix queries quote lexemes as tsquery text', async (t) => {
  t.equal(prefixQuery(['rebat', 'paid']), "'rebat':* | 'paid':*")
  t.equal(prefixQuery(["o'neil", 'a\\b']), "'o''neil':* | 'a\\\\b':*")
  t.equal(prefixQuery([]), '')
})
