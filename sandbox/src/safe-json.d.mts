/** Parses JSON text from an isolate, dropping keys that could poison a prototype on merge. */
export declare function parseUntrustedJson(text: string): unknown
