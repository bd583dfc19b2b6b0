import t from 'tap'
import { lookAlikeOf, scopeSkeleton } from './confusables.js'

t.test('skeletons fold digit, letter, script and separator look-alikes', async (t) => {
  const same = (a: string, b: string) => t.equal(scopeSkeleton(a), scopeSkeleton(b), `${a} ~ ${b}`)
  same('@tre11is', '@trellis')
  same('@platf0rm', '@platform')
  same('@rnarketplace', '@marketplace')
  same('@vvidgets', '@widgets')
  same('@ac-me', '@acme')
  same('@trеllis', '@trellis') // Cyrillic е
  same('@ｔｒｅｌｌｉｓ', '@trellis') // fullwidth, NFKC
  same('@trellís', '@trellis') // a diacritic
  t.not(scopeSkeleton('@acme'), scopeSkeleton('@acne'))
})

t.test('reserved names are refused as look-alikes or inside a claim; existing scopes as look-alikes', async (t) => {
  t.same(lookAlikeOf('@trellis-official', []), { imitates: '@trellis', reason: 'reserved' })
  t.same(lookAlikeOf('@myadmin', []), undefined, 'a short reserved word only counts as a whole word')
  t.same(lookAlikeOf('@my-admin', []), { imitates: '@admin', reason: 'reserved' })
  t.same(lookAlikeOf('@acrne', ['@acme']), { imitates: '@acme', reason: 'existing' })
  t.same(lookAlikeOf('@trellis', [], { reserved: false }), undefined, 'the platform assigns reserved names')
  t.same(lookAlikeOf('@acme', ['@acme']), undefined, 'the same scope is "taken", not a look-alike')
  t.same(lookAlikeOf('@northwind', ['@acme', '@beta']), undefined)
})
