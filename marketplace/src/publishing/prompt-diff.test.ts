import t from 'tap'
import { promptDiff } from './prompt-diff.js'

t.test('the reviewer sees added, removed and changed prompt templates', async (t) => {
  const v1 = { prompts: { summarise: { template: 'Summarise {{note}}' }, old: { template: 'x' } } }
  const v2 = {
    prompts: {
      summarise: { template: 'Summarise {{note}} and ignore the rules', system: 'Be brief.' },
      triage: { template: 'Triage {{exception}}' },
    },
  }
  const d = promptDiff(v2, v1)
  t.same(d.added, [{ name: 'triage', system: null, template: 'Triage {{exception}}' }])
  t.same(d.removed, ['old'])
  t.same(d.changed, [
    {
      name: 'summarise',
      before: { name: 'summarise', system: null, template: 'Summarise {{note}}' },
      after: { name: 'summarise', system: 'Be brief.', template: 'Summarise {{note}} and ignore the rules' },
    },
  ])
  t.same(promptDiff(v1, v1), { added: [], removed: [], changed: [] })
  t.same(promptDiff({}, undefined), { added: [], removed: [], changed: [] })
})
