/** Reading a publish upload: the multipart body under its limits, and the limits of what it holds. */
import type { FastifyRequest } from 'fastify'
import { KRN } from '@trellis/core'
import { TrellisError } from '@trellis/plugin-sdk'
import { MKT } from '../errors.js'
import { PUBLISH_LIMITS } from './limits.js'

/** An upload as read from the multipart body. */
export interface Upload {
  tgz: Buffer
  signature: string
  changelog?: string
}

const MULTIPART_ERRORS: Record<string, () => Error> = {
  FST_REQ_FILE_TOO_LARGE: () => MKT.PACKAGE_TOO_LARGE({ limit: PUBLISH_LIMITS.uploadBytes }),
  FST_FILES_LIMIT: () => MKT.UPLOAD_INVALID({ reason: 'send exactly one file, in the field "package"' }),
  FST_PARTS_LIMIT: () =>
    MKT.UPLOAD_INVALID({ reason: 'too many multipart parts: send package, signature and changelog' }),
  FST_FIELDS_LIMIT: () => MKT.UPLOAD_INVALID({ reason: 'too many fields: send package, signature and changelog' }),
  FST_PROTO_VIOLATION: () => MKT.UPLOAD_INVALID({ reason: 'a field name is not allowed' }),
  FST_MP_PREMATURE_CLOSE: () =>
    MKT.UPLOAD_INVALID({ reason: 'the upload ended before the multipart body was complete' }),
}

/** Reads the multipart body under its limits; anything unexpected is MKT_ERR_UPLOAD_INVALID. */
export async function readUpload(request: FastifyRequest): Promise<Upload> {
  if (!request.isMultipart())
    throw KRN.UNSUPPORTED_MEDIA_TYPE({ type: String(request.headers['content-type'] ?? 'none').split(';')[0]! })
  let tgz: Buffer | undefined
  let signature: string | undefined
  let changelog = ''
  const parts = request.parts()
  // The parser's own limits stop a part; this stops the body, whatever it holds (an endless
  // field, an endless preamble): past the cap the request is failed and never read further.
  let read = 0
  const raw = request.raw
  const count = (chunk: Buffer) => {
    read += chunk.length
    if (read <= UPLOAD_BODY_CAP) return
    raw.off('data', count)
    raw.unpipe()
    raw.pause()
    raw.emit('error', MKT.PACKAGE_TOO_LARGE({ limit: PUBLISH_LIMITS.uploadBytes }))
  }
  raw.on('data', count)
  try {
    for await (const part of parts) {
      if (part.type === 'file') {
        if (part.fieldname !== 'package') {
          part.file.resume()
          throw MKT.UPLOAD_INVALID({
            reason: `unexpected file field "${part.fieldname}"; the package goes in "package"`,
          })
        }
        tgz = await part.toBuffer()
        if (part.file.truncated) throw MKT.PACKAGE_TOO_LARGE({ limit: PUBLISH_LIMITS.uploadBytes })
      } else {
        if (part.valueTruncated || part.fieldnameTruncated)
          throw MKT.UPLOAD_INVALID({ reason: `field "${part.fieldname}" is too long` })
        const value = typeof part.value === 'string' ? part.value : String(part.value ?? '')
        if (part.fieldname === 'signature') signature = value
        else if (part.fieldname === 'changelog') changelog = value
        else throw MKT.UPLOAD_INVALID({ reason: `unexpected field "${part.fieldname}"` })
      }
    }
  } catch (err) {
    raw.off('data', count)
    const mapped = MULTIPART_ERRORS[(err as { code?: string }).code ?? '']
    if (mapped) throw mapped()
    if (err instanceof TrellisError) throw err
    // Reading the body only parses it: whatever else fails here (busboy's "Unexpected end of
    // form" for a body without its closing boundary, a malformed part header) is the body's fault.
    throw MKT.UPLOAD_INVALID({
      reason: `the multipart body is malformed: ${String((err as Error)?.message ?? err).slice(0, 200)}`,
    })
  }
  raw.off('data', count)
  return checkUpload({ tgz, signature, changelog })
}

/** The most a whole upload body may be: the package, the changelog field at 4 bytes a character, the signature and multipart framing. */
export const UPLOAD_BODY_CAP =
  PUBLISH_LIMITS.uploadBytes + PUBLISH_LIMITS.changelogChars * 4 + PUBLISH_LIMITS.signatureChars + 64 * 1024

/** Refuses an upload by its declared length, before a byte of it is read. */
export function refuseByLength(request: FastifyRequest): void {
  const declared = request.headers['content-length']
  if (declared !== undefined && Number(declared) > UPLOAD_BODY_CAP)
    throw MKT.PACKAGE_TOO_LARGE({ limit: PUBLISH_LIMITS.uploadBytes })
}

/** The upload's own limits, whoever read it. */
export function checkUpload(u: { tgz?: Buffer; signature?: string; changelog?: string }): Upload {
  if (!u.tgz || u.tgz.length === 0)
    throw MKT.UPLOAD_INVALID({ reason: 'the file field "package" (the .tgz) is missing' })
  if (u.tgz.length > PUBLISH_LIMITS.uploadBytes) throw MKT.PACKAGE_TOO_LARGE({ limit: PUBLISH_LIMITS.uploadBytes })
  if (u.signature === undefined || u.signature.trim() === '')
    throw MKT.UPLOAD_INVALID({ reason: 'the field "signature" (the .sig text) is missing' })
  if (u.signature.length > PUBLISH_LIMITS.signatureChars)
    throw MKT.UPLOAD_INVALID({ reason: 'the signature is too long for an Ed25519 signature' })
  const changelog = u.changelog ?? ''
  if (changelog.includes('\0')) throw MKT.NUL_BYTE({ where: 'the changelog' })
  if (changelog.includes('\uFFFD')) throw MKT.NOT_UTF8({ where: 'the changelog' })
  if (changelog.length > PUBLISH_LIMITS.changelogChars)
    throw MKT.UPLOAD_INVALID({ reason: `the changelog exceeds ${PUBLISH_LIMITS.changelogChars} characters` })
  return { tgz: u.tgz, signature: u.signature.trim(), changelog }
}
