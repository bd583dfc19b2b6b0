import { createContext, useContext } from 'react'
import type { Branding } from './branding'

export interface Me {
  user: { id: string; email: string; name: string }
  org: { id: string; kind: string; name: string }
  permissions: string[]
}

export interface AuthState {
  me: Me
  branding: Branding
  signOut(): void
}

export const AuthContext = createContext<AuthState | undefined>(undefined)

export function useAuth(): AuthState {
  const a = useContext(AuthContext)
  if (!a) throw new Error('outside the signed-in shell')
  return a
}

export const can = (me: Me, permission: string) => me.permissions.includes(permission)
