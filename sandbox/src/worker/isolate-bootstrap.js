// Runs INSIDE each isolate, before any plugin code, and is never imported by Node: the worker
// reads this file as text and compiles it into the isolate. It is one function expression that
// receives the only host function an isolate ever gets (a fire-and-forget callback that
// carries strings out) and returns the entry points the worker calls.
//
// Plugin code shares this realm, so everything here assumes plugin code may later replace any
// global or prototype method. Hence: builtins are captured before the bundle runs, the
// callbacks live only in this closure (strict mode, so `fn.caller` and structured stack traces
// cannot reach it), and everything leaving the isolate is a string built from captured
// JSON.stringify of primitives or of values whose prototype is null.
// Type-checked (checkJs) through JSDoc comments only; its types are in bootstrap-types.d.ts.

;(function trellisBootstrap(/** @type {BootHostCall} */ $hostCall) {
  // biome-ignore lint/suspicious/noRedundantUseStrict: a script, not a module; hides these functions from call sites
  'use strict'
  const hostCall = $hostCall
  const jsonParse = JSON.parse
  const jsonStringify = JSON.stringify
  const apply = Reflect.apply
  const defineProperty = Reflect.defineProperty
  const freeze = Object.freeze
  const create = Object.create
  const isArray = Array.isArray
  const PromiseCtor = Promise
  const promiseReject = Promise.reject.bind(Promise)
  const ErrorCtor = Error
  const TypeErrorCtor = TypeError
  const MapCtor = Map
  const mapGet = Map.prototype.get
  const mapSet = Map.prototype.set
  const mapDelete = Map.prototype.delete
  const WeakMapCtor = WeakMap
  const weakGet = WeakMap.prototype.get
  const weakSet = WeakMap.prototype.set
  const stringSlice = String.prototype.slice
  const StringCtor = String
  const /** @type {Record<string, unknown>} */ globalObject = globalThis
  const dateNow = Date.now

  // A shared buffer is the only way to block the thread in Atomics.wait, and wasm memory is
  // allocated outside the heap limit isolated-vm enforces; neither is needed by plugins.
  delete globalObject.SharedArrayBuffer
  delete globalObject.WebAssembly

  /** @type {Readonly<Record<string, string>>} */
  const LEVELS = freeze({ debug: 'debug', info: 'info', warn: 'warn', error: 'error' })
  const MAX_MESSAGE = 8 * 1024
  const MAX_STACK = 16 * 1024
  const MAX_OP = 256
  const MAX_ENTRIES = 10000

  let /** @type {Function | null} */ pluginInvoke = null
  let /** @type {BootEntry | null} */ lastEntry = null
  let /** @type {BootInvocation | null} */ active = null
  // The invocation whose result awaits `poll`.
  let /** @type {BootInvocation | null} */ finished = null
  // Host errors handed to plugin code, so a rethrown one is recognised without trusting any
  // property the plugin could forge or change.
  const hostErrors = new WeakMapCtor()

  function quote(/** @type {unknown} */ s) {
    return jsonStringify(s)
  }

  function clip(/** @type {unknown} */ value, /** @type {number} */ max) {
    return typeof value === 'string' ? (value.length > max ? apply(stringSlice, value, [0, max]) : value) : ''
  }

  /** @param {unknown} v @returns {v is Record<string, unknown>} */
  function isObjectLike(v) {
    return v !== null && (typeof v === 'object' || typeof v === 'function')
  }

  // `obj` is a value plugin code made: any property read may throw
  function read(/** @type {any} */ obj, /** @type {string} */ key) {
    try {
      return obj[key]
    } catch {
      return undefined
    }
  }

  function describeThrown(/** @type {unknown} */ e) {
    if (isObjectLike(e)) {
      let ref
      try {
        ref = apply(weakGet, hostErrors, [e])
      } catch {
        ref = undefined
      }
      if (typeof ref === 'number') return `{"kind":"host","ref":${ref}}`
      const name = clip(read(e, 'name'), 200) || 'Error'
      const message = clip(read(e, 'message'), MAX_MESSAGE)
      const stack = clip(read(e, 'stack'), MAX_STACK)
      const code = clip(read(e, 'code'), 200)
      const status = read(e, 'status')
      return (
        '{"kind":"plugin","name":' +
        quote(name) +
        ',"message":' +
        quote(message) +
        ',"stack":' +
        quote(stack) +
        ',"code":' +
        quote(code) +
        ',"status":' +
        // biome-ignore lint/suspicious/noSelfCompare: NaN check without globals plugin code could replace
        (typeof status === 'number' && status === status ? status : 0) +
        '}'
      )
    }
    const text = clip(messageText(e), 200)
    return (
      '{"kind":"plugin","name":"","message":' +
      quote(`plugin threw a non-Error value: ${text}`) +
      ',"stack":"","code":"","status":0}'
    )
  }

  // JSON.stringify with a running lower bound of the text's size: it stops (throwing TOO_BIG)
  // soon after the output passes `max`, so a huge value (300k keys, a sparse array with a length
  // of 2**32 - 1) never becomes a huge string in this heap. The bound can undercount (escapes,
  // long numbers) by a small factor, never overcount: the exact length is checked afterwards.
  const TOO_BIG = freeze(create(null))
  function boundedStringify(/** @type {unknown} */ value, /** @type {number} */ max) {
    let left = max
    let root = true
    /** @this {unknown} @param {string} key @param {any} v any value inside what is serialised */
    const replacer = function (key, v) {
      const t = typeof v
      const omittable = t === 'undefined' || t === 'function' || t === 'symbol'
      const text = t === 'string' ? v.length + 2 : omittable ? 4 : 1
      if (root) root = false
      // `this` is the holder: in an array every element is written (holes as null); in an
      // object a property costs its quoted key and colon, and is left out if its value cannot be
      else if (isArray(this)) left -= text
      else if (!omittable) left -= key.length + 3 + text
      if (left < 0) throw TOO_BIG
      return v
    }
    const json = jsonStringify(value, replacer)
    if (json !== undefined && json.length > max) throw TOO_BIG
    return json
  }

  /** What a log message that is not a string becomes: never String() of an object (a sparse
   * array's join runs in V8 code that ignores the CPU limit), only bounded JSON of it.
   * @param {any} message whatever plugin code logged @returns {string} */
  function messageText(message) {
    const t = typeof message
    if (t === 'string') return message
    if (t === 'number' || t === 'boolean' || t === 'bigint' || t === 'undefined' || message === null)
      return StringCtor(message)
    if (t === 'symbol') return 'a symbol'
    try {
      if (message instanceof ErrorCtor) {
        // what String(error) would say, from its own name and message (clipped, never joined)
        const name = clip(read(message, 'name'), 200) || 'Error'
        const text = clip(read(message, 'message'), MAX_MESSAGE)
        return text ? `${name}: ${text}` : name
      }
      const json = boundedStringify(message, MAX_MESSAGE)
      return json === undefined ? '' : json
    } catch (e) {
      return e === TOO_BIG ? '[value too large to log]' : '[unserialisable]'
    }
  }

  function errorText(/** @type {unknown} */ e) {
    if (isObjectLike(e)) return clip(read(e, 'message'), 500) || 'unknown error'
    return clip(messageText(e), 500) || 'unknown error'
  }

  /** @param {ErrorConstructor | TypeErrorConstructor} Ctor @param {string} message @param {string} [code] */
  function makeError(Ctor, message, code) {
    const err = new Ctor(message)
    if (code) defineProperty(err, 'code', { value: code, writable: true, configurable: true, enumerable: true })
    return err
  }

  /** @param {BootInvocation} state @param {unknown} op @param {unknown} args @returns {Promise<unknown>} */
  function callHost(state, op, args) {
    if (active !== state)
      return promiseReject(
        makeError(ErrorCtor, 'host is not available after the invocation ended', 'SBX_ERR_INVOCATION_ENDED'),
      )
    if (typeof op !== 'string' || op.length === 0 || op.length > MAX_OP)
      return promiseReject(new TypeErrorCtor('host.call: op must be a non-empty string'))
    state.calls++
    if (state.calls > state.limits.maxHostCalls) {
      // A breach ends the invocation (the worker fails it on this notice), so the call simply
      // never settles: rejecting every call of a flood would cost isolated-vm quadratic time
      // in its unhandled-rejection tracking.
      if (!state.limitHit) {
        state.limitHit = true
        hostCall(state.token, -1, '', '')
      }
      return new PromiseCtor(() => {})
    }
    /** @type {string | undefined} */
    let argsJson
    let tooBig = false
    try {
      argsJson = args === undefined ? '' : boundedStringify(args, state.limits.maxInputBytes)
    } catch (e) {
      if (e !== TOO_BIG)
        return promiseReject(new TypeErrorCtor(`host.call: args are not JSON-serialisable: ${errorText(e)}`))
      tooBig = true
    }
    if (argsJson === undefined) argsJson = ''
    if (tooBig) {
      const err = makeError(
        ErrorCtor,
        `host.call args exceed ${state.limits.maxInputBytes} bytes`,
        'SBX_ERR_PAYLOAD_TOO_LARGE',
      )
      // Recognised by the worker if the plugin lets it escape (refs below 0 are the sandbox's own).
      apply(weakSet, hostErrors, [err, -1])
      return promiseReject(err)
    }
    const cid = ++state.nextCall
    return new PromiseCtor((resolve, reject) => {
      apply(mapSet, state.pending, [cid, { resolve, reject }])
      hostCall(state.token, cid, op, argsJson)
    })
  }

  /** @param {BootInvocation | null} state @param {unknown} level @param {unknown} message @param {unknown} [fields] */
  function writeLog(state, level, message, fields) {
    if (state === null || active !== state) return
    const lvl = typeof level === 'string' && LEVELS[level] === level ? level : 'info'
    if (state.lines >= state.limits.maxLogLines) {
      state.dropped++
      return
    }
    const text = messageText(message)
    let fieldsJson = ''
    if (fields !== undefined && fields !== null) {
      // too large or unserialisable fields are left out; the line is kept
      try {
        fieldsJson = boundedStringify(fields, state.limits.maxLogBytes) || ''
      } catch {
        fieldsJson = ''
      }
    }
    const size = text.length + fieldsJson.length
    if (state.bytes + size > state.limits.maxLogBytes) {
      state.dropped++
      return
    }
    state.lines++
    state.bytes += size
    // Lines stay in the isolate until the invocation ends (or the worker drains them after a
    // timeout): no host round trip per line.
    state.logs +=
      (state.logs === '' ? '' : ',') +
      '[' +
      quote(lvl) +
      ',' +
      quote(text) +
      ',' +
      quote(fieldsJson) +
      ',' +
      dateNow() +
      ']'
  }

  /** '[' + lines + ',' + dropped + ']' : the worker checks and re-limits every line. @param {BootInvocation} state */
  function logsOf(state) {
    return `[[${state.logs}],${state.dropped}]`
  }

  function drain(/** @type {number} */ token) {
    const state =
      active !== null && active.token === token
        ? active
        : finished !== null && finished.token === token
          ? finished
          : null
    return state === null ? '' : logsOf(state)
  }

  function makeConsoleMethod(/** @type {string} */ level) {
    return function () {
      let text = ''
      for (let i = 0; i < arguments.length; i++) {
        const a = arguments[i]
        const part = a === undefined ? 'undefined' : messageText(a)
        text += (i ? ' ' : '') + part
        if (text.length > MAX_MESSAGE) break
      }
      writeLog(active, level, text)
    }
  }
  globalObject.console = freeze({
    log: makeConsoleMethod('info'),
    info: makeConsoleMethod('info'),
    debug: makeConsoleMethod('debug'),
    warn: makeConsoleMethod('warn'),
    error: makeConsoleMethod('error'),
  })

  /** Evaluates the bundle's CommonJS wrapper; returns 'O' + entries JSON or 'E' + error JSON.
   * @param {Function} factory */
  function load(factory) {
    try {
      const /** @type {{ exports: any }} */ module = { exports: {} }
      apply(factory, undefined, [module, module.exports])
      const exp = module.exports
      if (!isObjectLike(exp)) return 'E{"kind":"shape","message":"module.exports is not an object"}'
      const invoke = exp.invoke
      if (typeof invoke !== 'function') return 'E{"kind":"shape","message":"module.exports.invoke is not a function"}'
      const entries = exp.entries
      if (!isObjectLike(entries)) return 'E{"kind":"shape","message":"module.exports.entries is not an object"}'
      let out = '{'
      let first = true
      for (const kind of ['route', 'event', 'action', 'workflowStep']) {
        const names = entries[kind]
        if (names === undefined) continue
        if (!isArray(names)) return `E{"kind":"shape","message":${quote(`entries.${kind} is not an array`)}}`
        if (names.length > MAX_ENTRIES)
          return `E{"kind":"shape","message":${quote(`entries.${kind} has more than ${MAX_ENTRIES} names`)}}`
        let list = '['
        for (let i = 0; i < names.length; i++) {
          const n = names[i]
          if (typeof n !== 'string' || n.length === 0 || n.length > 512)
            return `E{"kind":"shape","message":${quote(`entries.${kind} must hold non-empty strings`)}}`
          list += (i ? ',' : '') + quote(n)
        }
        out += `${(first ? '' : ',') + quote(kind)}:${list}]`
        first = false
      }
      pluginInvoke = invoke
      return `O${out}}`
    } catch (e) {
      return `E${describeThrown(e)}`
    }
  }

  // Starts one invocation, whose result ('O' + output JSON or 'E' + error JSON) `poll` collects.
  // The limits come as numbers: parsing JSON for them cost more than the rest of a small start.
  /** @param {number} token @param {string} kind @param {string} name @param {string} inputJson @param {string} contextJson
   *  @param {number} calls @param {number} inBytes @param {number} outBytes @param {number} lines @param {number} logBytes */
  function invoke(token, kind, name, inputJson, contextJson, calls, inBytes, outBytes, lines, logBytes) {
    const /** @type {BootLimits} */ limits = {
        maxHostCalls: calls,
        maxInputBytes: inBytes,
        maxOutputBytes: outBytes,
        maxLogLines: lines,
        maxLogBytes: logBytes,
      }
    const /** @type {BootInvocation} */ state = {
        token,
        limits,
        pending: new MapCtor(),
        nextCall: 0,
        calls: 0,
        limitHit: false,
        lines: 0,
        bytes: 0,
        dropped: 0,
        logs: '',
        result: undefined,
      }
    active = state
    finished = null
    const host = freeze({
      call: (/** @type {unknown} */ op, /** @type {unknown} */ args) => callHost(state, op, args),
      log: (/** @type {unknown} */ level, /** @type {unknown} */ message, /** @type {unknown} */ fields) =>
        writeLog(state, level, message, fields),
    })
    // The entry's description is the same object for every invocation of it in this context.
    if (lastEntry === null || lastEntry.kind !== kind || lastEntry.name !== name) lastEntry = freeze({ kind, name })
    const input = inputJson === '' ? undefined : jsonParse(inputJson)
    run(state, lastEntry, input, jsonParse(contextJson), host)
  }

  function poll(/** @type {number} */ token) {
    const state = finished
    if (state === null || state.token !== token) return undefined
    finished = null
    return state.result
  }

  /** @param {BootInvocation} state @param {BootEntry} entry @param {unknown} input @param {unknown} context
   *  @param {BootHost} host */
  async function run(state, entry, input, context, host) {
    // One async function around the entry (each further one costs a promise and a microtask turn).
    let output
    let out = ''
    try {
      if (pluginInvoke === null) throw new ErrorCtor('bundle is not loaded')
      output = await apply(pluginInvoke, undefined, [entry, input, context, host])
    } catch (e) {
      out = state.limitHit ? 'E{"kind":"host-call-limit"}' : `E${describeThrown(e)}`
    } finally {
      if (active === state) active = null
    }
    // Logs, a newline, then the result: JSON text never holds a raw newline.
    const result = `${logsOf(state)}\n${out === '' ? serialise(state, output) : out}`
    state.result = result
    finished = state
    return result
  }

  /** 'O' + the output's JSON, or 'E' + why it has none. @param {BootInvocation} state @param {unknown} output */
  function serialise(state, output) {
    if (state.limitHit) return 'E{"kind":"host-call-limit"}'
    let json
    try {
      // measured here, under the CPU limit, before anything is copied out of the isolate
      json = boundedStringify(output, state.limits.maxOutputBytes)
    } catch (e) {
      if (e === TOO_BIG) return 'E{"kind":"output-size"}'
      return `E{"kind":"output","message":${quote(errorText(e))}}`
    }
    if (json === undefined) json = 'null'
    return `O${json}`
  }

  /** Delivers host-call outcomes, (cid, ok, payload) each — ok: JSON, else error JSON {code,status,message,ref}
   * — all before plugin code resumes. Those of an invocation that ended stay undelivered, so a dangling
   * promise never resumes under a later invocation's identity. @param {number} token @param {...unknown} outcomes */
  function settle(token, ...outcomes) {
    const state = active
    if (state === null || state.token !== token) return
    for (let i = 0; i + 2 < outcomes.length; i += 3) {
      const waiter = apply(mapGet, state.pending, [outcomes[i]])
      if (waiter === undefined) continue
      apply(mapDelete, state.pending, [outcomes[i]])
      const payload = /** @type {string} */ (outcomes[i + 2])
      if (outcomes[i + 1] === true) {
        waiter.resolve(payload === '' ? undefined : jsonParse(payload))
        continue
      }
      const d = jsonParse(payload)
      const err = makeError(ErrorCtor, d.message, d.code)
      defineProperty(err, 'name', { value: 'TrellisError', writable: true, configurable: true })
      defineProperty(err, 'status', { value: d.status, writable: true, configurable: true, enumerable: true })
      if (typeof d.ref === 'number') apply(weakSet, hostErrors, [err, d.ref])
      waiter.reject(err)
    }
  }

  return freeze({ __proto__: null, load, invoke, settle, poll, drain })
})
