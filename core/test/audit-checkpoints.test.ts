import t from 'tap'
import { spawnSync } from 'node:child_process'
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CompactSign, generateKeyPair } from 'jose'
import { DB_KINDS, startTestKernel } from './helpers/test-kernel.js'
import { auditAttacks } from './helpers/audit-attacks.js'
import { verifyChain } from '../src/audit/verify.js'
import { AuditCheckpointer } from '../src/audit/checkpoints.js'
import { checkpointKeys, verifyCheckpoint, CHECKPOINT_TYP, type Checkpoint } from '../src/audit/checkpoint-signing.js'
import { checkAgainstCheckpoints, readCheckpoints, trustedCheckpoints } from '../src/audit/checkpoint-verify.js'

const CLI = fileURLToPath(new URL('../../platform/bin/trellis.js', import.meta.url))

for (const kind of DB_KINDS) {
  t.test(`signed audit checkpoints on ${kind}`, async (t) => {
    const k = await startTestKernel(t, kind)
    const { db } = k.kernel.ctx
    const dir = mkdtempSync(join(tmpdir(), 'trellis-checkpoints-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    k.kernel.ctx.config.auditCheckpointDir = dir

    const { tamper, busyTenant } = auditAttacks(t, k)
    const checkpointNow = async (orgId: string): Promise<Checkpoint> => {
      const r = await k.req('POST', '/v1/platform/audit/checkpoints', { token: k.adminToken, body: { orgId } })
      t.equal(r.status, 200, JSON.stringify(r.body))
      return r.body.items[0]
    }
    const checkFromDir = async (orgId: string) => {
      const stored = await readCheckpoints(dir)
      const trusted = await trustedCheckpoints(stored.checkpoints, await checkpointKeys(db))
      const report = await verifyChain(db, orgId)
      return {
        report,
        trusted,
        problems: report.ok ? await checkAgainstCheckpoints(db, report, trusted.byOrg.get(orgId) ?? []) : [],
      }
    }

    t.test('platform admins sign a head on demand; it goes out as an event and a line in the directory', async (t) => {
      const s = await busyTenant('publish', 2)
      const anonymous = await k.req('POST', '/v1/platform/audit/checkpoints', { body: { orgId: s.orgId } })
      t.equal(anonymous.body.code, 'AUTH_ERR_UNAUTHENTICATED')
      const tenantAdmin = await k.req('POST', '/v1/platform/audit/checkpoints', {
        token: s.token,
        body: { orgId: 'not-a-uuid' },
      })
      t.equal(tenantAdmin.status, 403, 'permission before validation')
      t.equal(tenantAdmin.body.code, 'AUTH_ERR_FORBIDDEN')
      t.equal(
        (await k.req('POST', '/v1/platform/audit/checkpoints', { token: k.adminToken, body: { orgId: 'not-a-uuid' } }))
          .body.code,
        'KRN_ERR_VALIDATION_FAILED',
      )

      const cp = await checkpointNow(s.orgId)
      const report = await verifyChain(db, s.orgId)
      t.same(
        { tenantId: cp.tenantId, seq: cp.seq, hash: cp.hash },
        { tenantId: s.orgId, seq: report.head!.seq, hash: report.head!.hash },
        'the checkpoint is the chain head',
      )
      t.equal(cp.kid, k.kernel.ctx.keys.current()!.kid, 'signed with the platform signing key, kid recorded')
      t.same(await verifyCheckpoint(cp, await checkpointKeys(db)), {
        ok: true,
        claim: { tenantId: s.orgId, seq: cp.seq, hash: cp.hash, at: cp.at },
      })

      const lines = readFileSync(join(dir, `${s.orgId}.jsonl`), 'utf8')
        .trim()
        .split('\n')
      t.same(JSON.parse(lines.at(-1)!), cp, 'appended to <dir>/<orgId>.jsonl')
      const events = await k.appSql(
        s.orgId,
        `select tenant_id, subject, data from events where type = 'kernel.audit.checkpoint'`,
      )
      t.equal(events.length, 1, "the event is in the tenant's own stream")
      t.same(events[0]!.data, { seq: cp.seq, hash: cp.hash, at: cp.at, kid: cp.kid, jws: cp.jws })
      t.equal(events[0]!.subject, `audit/${s.orgId}`)

      const all = await k.req('POST', '/v1/platform/audit/checkpoints', { token: k.adminToken, body: {} })
      t.equal(all.status, 200, JSON.stringify(all.body))
      const orgs = all.body.items.map((c: Checkpoint) => c.tenantId)
      t.ok(
        orgs.includes(s.orgId) && orgs.includes('00000000-0000-0000-0000-000000000000'),
        "with no orgId: every chain, the platform's too",
      )
    })

    t.test(
      'deleting the newest entries: the chain alone still verifies, against a checkpoint it does not',
      async (t) => {
        const s = await busyTenant('truncate', 6)
        const cp = await checkpointNow(s.orgId)
        const head = (await verifyChain(db, s.orgId)).head!.seq
        t.equal(cp.seq, head)
        t.ok(Number(head) > 6)
        await tamper('delete from audit_log where tenant_id = ?::uuid and seq > 4', [s.orgId])
        const alone = await verifyChain(db, s.orgId)
        t.equal(alone.ok, true, 'the weakness: a chain cut at its end is still a valid chain')
        t.equal(alone.head!.seq, '4')
        const { problems } = await checkFromDir(s.orgId)
        t.equal(problems.length, 1)
        t.match(problems[0], {
          tenantId: s.orgId,
          seq: head,
          at: cp.at,
          kid: cp.kid,
          reason: new RegExp(`chain ends at entry 4 .* saw entry ${head}: the newest entries were deleted`),
        })
      },
    )

    t.test(
      'a chain rewritten and re-sealed from an altered entry verifies alone, not against a checkpoint',
      async (t) => {
        const s = await busyTenant('rewrite', 4)
        const cp = await checkpointNow(s.orgId)
        // The attacker alters entry 2 and has every entry from it sealed again: a consistent chain.
        await tamper(
          `update audit_log set data = '{"name":"innocent"}', seq = null, prev_hash = null, hash = null where tenant_id = ?::uuid and seq >= 2`,
          [s.orgId],
        )
        await tamper(
          `update audit_log set seq = null, prev_hash = null, hash = null where tenant_id = ?::uuid and seq >= 2`,
          [s.orgId],
        )
        await k.kernel.ctx.sealer.sealTenant(s.orgId)
        const alone = await verifyChain(db, s.orgId)
        t.equal(alone.ok, true, 'the rewritten chain is consistent')
        t.equal(alone.head!.seq, cp.seq, 'and as long as before')
        const { problems } = await checkFromDir(s.orgId)
        t.equal(problems.length, 1)
        t.match(problems[0]!.reason, new RegExp(`entry ${cp.seq} has another hash than the checkpoint of .* signed`))
      },
    )

    t.test('a forged or altered checkpoint is reported, not trusted', async (t) => {
      const s = await busyTenant('forged', 2)
      const cp = await checkpointNow(s.orgId)
      const file = join(dir, `${s.orgId}.jsonl`)
      // 1. a genuine signature with the clear seq raised (to make the chain look cut)
      appendFileSync(file, `${JSON.stringify({ ...cp, seq: '999' })}\n`)
      // 2. signed by an attacker's own key under the platform's kid
      const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' })
      const claim = { tenantId: s.orgId, seq: '999', hash: 'f'.repeat(64), at: new Date().toISOString() }
      const jws = await new CompactSign(new TextEncoder().encode(JSON.stringify(claim)))
        .setProtectedHeader({ alg: 'EdDSA', kid: cp.kid, typ: CHECKPOINT_TYP })
        .sign(privateKey)
      appendFileSync(file, `${JSON.stringify({ ...claim, kid: cp.kid, jws })}\n`)
      // 3. a key nobody knows
      const other = await new CompactSign(new TextEncoder().encode(JSON.stringify(claim)))
        .setProtectedHeader({ alg: 'EdDSA', kid: 'k-attacker', typ: CHECKPOINT_TYP })
        .sign(privateKey)
      appendFileSync(file, `${JSON.stringify({ ...claim, kid: 'k-attacker', jws: other })}\n`)
      // 4. not a checkpoint at all
      appendFileSync(file, 'garbage\n')
      const stored = await readCheckpoints(file)
      t.equal(stored.unreadable.length, 1)
      t.match(stored.unreadable[0], { where: `${file}:5`, reason: /not a checkpoint/ })
      const trusted = await trustedCheckpoints(stored.checkpoints, await checkpointKeys(db))
      t.equal(trusted.byOrg.get(s.orgId)!.length, 1, 'only the genuine checkpoint is trusted')
      t.match(trusted.forged, [
        { where: `${file}:2`, tenantId: s.orgId, seq: '999', reason: /its seq is not what was signed/ },
        { where: `${file}:3`, reason: /signature does not verify/ },
        { where: `${file}:4`, reason: /unknown key k-attacker/ },
      ])
      const report = await verifyChain(db, s.orgId)
      t.same(
        await checkAgainstCheckpoints(db, report, trusted.byOrg.get(s.orgId)!),
        [],
        'the chain meets the genuine checkpoint',
      )
    })

    t.test('checkpoints signed before a key rotation still verify; new ones carry the new kid', async (t) => {
      const s = await busyTenant('rotate', 1)
      const before = await checkpointNow(s.orgId)
      const kid = await k.kernel.ctx.keys.rotate()
      t.not(kid, before.kid)
      // Retired keys verify access tokens for a day only; checkpoints for as long as they are kept.
      await k.ownerSql(`update signing_keys set retired_at = now() - interval '30 days' where kid = ?`, [before.kid])
      t.match(await verifyCheckpoint(before, await checkpointKeys(db)), { ok: true })
      const after = await checkpointNow(s.orgId)
      t.equal(after.kid, kid)
      t.match(await verifyCheckpoint(after, await checkpointKeys(db)), { ok: true })
    })

    t.test('the periodic run publishes changed heads only', async (t) => {
      const s = await busyTenant('periodic', 1)
      const checkpointer = new AuditCheckpointer({ db, keys: k.kernel.ctx.keys, dir })
      const first = await checkpointer.checkpointAll()
      t.ok(first.some((c) => c.tenantId === s.orgId))
      const second = await checkpointer.checkpointAll()
      t.notOk(
        second.some((c) => c.tenantId === s.orgId),
        'an unchanged head is not published again',
      )
      t.equal(
        (await k.req('POST', '/v1/roles', { token: s.token, body: { name: 'later', permissions: ['users.read'] } }))
          .status,
        201,
      )
      await k.kernel.ctx.sealer.flush()
      const third = await checkpointer.checkpointAll()
      t.equal(third.find((c) => c.tenantId === s.orgId)?.seq, (await verifyChain(db, s.orgId)).head!.seq)
    })

    if (kind === 'postgres') {
      t.test('`trellis audit checkpoint` and `trellis audit verify --checkpoints`', async (t) => {
        const s = await busyTenant('cli', 5)
        const cliDir = mkdtempSync(join(tmpdir(), 'trellis-cli-checkpoints-'))
        t.teardown(() => rmSync(cliDir, { recursive: true, force: true }))
        const env = {
          ...process.env,
          DATABASE_URL: k.databaseUrl,
          TRELLIS_SECRET_KEY: k.kernel.ctx.config.secretKey.toString('hex'),
          LOG_LEVEL: 'silent',
          TRELLIS_AUDIT_CHECKPOINT_DIR: cliDir,
        }
        const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8' })
        const made = cli('audit', 'checkpoint', '--tenant', s.orgId)
        t.equal(made.status, 0, made.stderr)
        const head = (await verifyChain(db, s.orgId)).head!.seq
        t.match(made.stdout, new RegExp(`signed\\s+${s.orgId}\\s+head ${head}:`))
        t.equal(
          cli('audit', 'verify', '--tenant', s.orgId, '--checkpoints', cliDir).status,
          0,
          'an intact chain meets its checkpoint',
        )

        await tamper('delete from audit_log where tenant_id = ?::uuid and seq > 3', [s.orgId])
        const alone = cli('audit', 'verify', '--tenant', s.orgId)
        t.equal(alone.status, 0, 'without checkpoints the cut goes unnoticed')
        const held = cli('audit', 'verify', '--tenant', s.orgId, '--checkpoints', cliDir)
        t.equal(held.status, 1)
        t.match(
          held.stdout,
          new RegExp(`BROKEN\\s+${s.orgId}\\s+against checkpoint ${head} of .*the newest entries were deleted`),
        )

        appendFileSync(
          join(cliDir, `${s.orgId}.jsonl`),
          `${JSON.stringify({
            ...JSON.parse(readFileSync(join(cliDir, `${s.orgId}.jsonl`), 'utf8').trim()),
            hash: '0'.repeat(64),
          })}\n`,
        )
        const forged = cli('audit', 'verify', '--checkpoints', cliDir)
        t.equal(forged.status, 1)
        t.match(
          forged.stdout,
          new RegExp(`FORGED\\s+${s.orgId}\\s+checkpoint ${head} \\(.*:2\\): its hash is not what was signed`),
        )

        const missing = cli('audit', 'verify', '--checkpoints', join(cliDir, 'nope'))
        t.equal(missing.status, 1)
        t.match(missing.stderr, /KRN_ERR_AUDIT_CHECKPOINTS_UNREADABLE/)
      })
    }
  })
}
