import type { MailMessage } from './mailer.js'

/** The password reset e-mail: a single-use link that expires. */
export function passwordResetMail(to: string, link: string, ttlMinutes: number): MailMessage {
  return {
    to,
    subject: 'Reset your Trellis password',
    text: [
      'Someone asked to reset the password of the Trellis account for this address.',
      '',
      `Choose a new password here (the link works once, for ${ttlMinutes} minutes):`,
      link,
      '',
      'If it was not you, ignore this message: your password stays as it is.',
    ].join('\n'),
  }
}

/** The invitation e-mail: who invited the address, into which organisation, with which role. */
export function invitationMail(
  to: string,
  invite: { orgName: string; role: string; link: string; expiresAt: Date },
): MailMessage {
  return {
    to,
    subject: `You are invited to ${invite.orgName} on Trellis`,
    text: [
      `You are invited to join ${invite.orgName} on Trellis as ${invite.role}.`,
      '',
      'Accept the invitation here (sign in, or create an account for this address):',
      invite.link,
      '',
      `The invitation expires at ${invite.expiresAt.toISOString()}. If you did not expect it, ignore this message.`,
    ].join('\n'),
  }
}
