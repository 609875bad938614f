#!/usr/bin/env node
// Runs componentize-js (the `cli.js` of the copy in ./node_modules, with
// the same arguments) with two changes to the JavaScript bindings it
// generates around each export and import. SpiderMonkey runs without a
// JIT inside the component, so every bytecode of these bindings is paid on
// every call (docs/plugins.md has the figures).
//
// 1. Strings returned to the host are encoded with the engine's native
//    TextEncoder. The generated `_utf8AllocateAndEncode` first counts the
//    UTF-8 bytes of every returned string with a `charCodeAt` loop, about
//    ten bytecodes per character; an event's `raw` JSON of a few hundred
//    bytes made that loop a large part of a warm call. The bytes written
//    are the same: a lone surrogate becomes U+FFFD (3 bytes) either way,
//    and exactly the encoded length is allocated.
//
// 2. The bindings run inside one function scope. The embedding evaluates them
//    as a script, so each of their top-level names (`dataView`, `$memory`,
//    `$dealloc`, the text codecs, the element's functions) was a global,
//    found by a lookup along the scope chain at every use: a profile put
//    about a tenth of a warm call's CPU in those lookups. Inside a function
//    they are closed-over variables, read from a known slot. The functions
//    the embedding calls (`bindExports` and the `export_*` entry points) are
//    put on the global object, where it looks for them, and the few standard
//    constructors the bindings use per call are read once. Two smaller things
//    go with it: the debug switch of `_debugLog` is read once (`JCO_DEBUG` in
//    the environment, which a component does not have) and tested before
//    each `_debugLog(...)` line, whose arguments (a message and an object of
//    literals, built for nothing when the switch is off: about 7 % of a warm
//    GitHub call's instructions) are then not evaluated; and an export with
//    a result awaits the element's result only when it is a promise (or
//    another thenable, as `await` would resolve it): a plain result is
//    lowered without suspending the export for a turn of the job queue. The
//    export still returns a promise, as the embedding expects. (`describe`,
//    called once per load, keeps its `await`.)
//
// 3. The component's memory is read and written through views kept between
//    accesses. The generated bindings get a fresh `DataView` check for every
//    field they read or write (`dataView($memory).getUint32(...)`: a call,
//    two native `buffer` getters, then the read), and a new `$memory.buffer`
//    for every string; the lifting of one header took about 42,000 Wasm
//    instructions, half of them in these accesses. componentize-js's
//    `$memory.buffer` is the memory below the current break (`sbrk(0)`) as
//    an ArrayBuffer whose contents are the memory itself: a new one when the
//    memory has grown, the old ones never detached. So a view stays valid
//    for every address below its end, and the rewrite only compares the
//    address with the end of the views it holds, getting new views (and a
//    RangeError, as the DataView would throw, beyond the memory) only when
//    the address lies past them. 32-bit fields, which the canonical ABI
//    aligns to 4 bytes (the bindings check list pointers' alignment
//    themselves), are read and written through a Uint32Array, without a
//    method call; other fields through the kept DataView.
//
// Each change is made only where the generated code has the shape it was
// written against; otherwise the bindings are left as generated (the
// component is then correct, only slower) and a warning says so, or, with
// COMPONENTIZE_BINDINGS=require (plugboard's own build), the build fails.

import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const PACKAGE = join(process.cwd(), 'node_modules', '@bytecodealliance', 'componentize-js');

const ORIGINAL_ENCODER = 'function _utf8AllocateAndEncode(s, realloc, memory) {';
const COUNT_LOOP = 's.charCodeAt(i)';
const NATIVE_ENCODER = `function _utf8AllocateAndEncode(s, realloc, memory) {
  if (typeof s !== 'string') {
    throw new TypeError('expected a string, received [' + typeof s + ']');
  }
  if (s.length === 0) { return { ptr: 1, len: 0 }; }
  const bytes = TEXT_ENCODER_UTF8.encode(s);
  const len = bytes.length;
  const ptr = realloc(0, 0, 1, len);
  new Uint8Array(memory.buffer, ptr, len).set(bytes);
  return { ptr, len };
}
`;

const DEBUG_CHECK = 'if (!globalThis?.process?.env?.JCO_DEBUG) { return; }';
const DEBUG_LINE = /^( *)_debugLog\(/gm;
/** Arguments of `_debugLog` that are safe not to evaluate: literals, names, `typeof name`. */
const QUIET_ARGUMENTS = /^(?:\s|'[^'\\\n]*'|"[^"\\\n]*"|[{}:,]|[\w$]+(?![\w$]))*$/;
const ENTRY_POINT = /^(?:async )?function (export_[\w$]+)\(/gm;
const AWAITED_CALL = /const (hostRet\d+) = await ([\w$]+)\(([\s\S]*?)\);\n/g;
/** Standard constructors the bindings use on every call, read once. */
const STANDARD = [
  'Uint8Array', 'Uint32Array', 'DataView', 'ArrayBuffer', 'TypeError', 'RangeError', 'Array', 'Boolean',
];

const DATA_VIEW_HELPER = 'const dataView = mem => dv.buffer === mem.buffer ? dv : dv = new DataView(mem.buffer);';
const GET_WORD = /dataView\(\$memory\)\.getUint32\(([\w$]+ \+ (\d+)), true\)/g;
const SET_WORD = /dataView\(\$memory\)\.setUint32\(([\w$]+ \+ (\d+)), ([\w$]+), true\)/g;
const VIEW_ACCESS = /dataView\(\$memory\)\.([gs]et(Int8|Uint8|Int16|Uint16|Int32|Uint32|Float32|Float64|BigInt64|BigUint64))\(([\w$]+ \+ \d+), /g;
const BYTES_VIEW = /new Uint8Array\(\$memory\.buffer, (ptr\d+), ([\w$]+)\)/g;
const BYTES_COPY = /new Uint8Array\(\$memory\.buffer\.slice\((ptr\d+), \1 \+ (len\d+ \* \d+)\)\)/g;
const ENCODER_VIEW = 'new Uint8Array(memory.buffer, ptr, len)';
/** Bytes of each DataView access. */
const WIDTH = { Int8: 1, Uint8: 1, Int16: 2, Uint16: 2, Int32: 4, Uint32: 4, Float32: 4, Float64: 8, BigInt64: 8, BigUint64: 8 };
/** The names the memory rewrite declares (as patterns). */
const MEMORY_NAMES = ['\\$buffer', '\\$end', '\\$words', '\\$view', '\\$memoryTo'];
/** Views of the memory kept between accesses, and the function that renews them. */
const MEMORY_VIEWS = `let $buffer = new ArrayBuffer(0);
let $end = 0;
let $words = new Uint32Array($buffer);
let $view = new DataView($buffer);
/** Renews the views from \`$memory.buffer\`; throws if \`end\` lies beyond the memory. */
function $memoryTo(end) {
  $buffer = $memory.buffer;
  $end = $buffer.byteLength;
  $words = new Uint32Array($buffer, 0, $end >>> 2);
  $view = new DataView($buffer);
  if (end > $end) {
    throw new RangeError('offset ' + end + ' is outside the memory of ' + $end + ' bytes');
  }
}
`;

/** Fails the build (COMPONENTIZE_BINDINGS=require) or warns, naming `problem`. */
function unknownShape(problem) {
  const message = `componentize.mjs: ${problem}`;
  if (process.env.COMPONENTIZE_BINDINGS === 'require') {
    throw new Error(`${message} (update componentize.mjs for this componentize-js)`);
  }
  console.warn(`${message}; that part of the bindings is left as generated`);
}

/** `bindings` with the string encoder replaced, or unchanged with a warning. */
function withNativeStringEncoding(bindings) {
  const start = bindings.indexOf(ORIGINAL_ENCODER);
  const end = start < 0 ? -1 : bindings.indexOf('\n}\n', start) + 3;
  const known =
    end > start &&
    bindings.slice(start, end).includes(COUNT_LOOP) &&
    bindings.slice(start, end).includes('TEXT_ENCODER_UTF8') &&
    !(bindings.slice(0, start) + bindings.slice(end)).includes('.codepoints');
  if (!known) {
    unknownShape('the string encoder componentize-js generated has an unknown shape');
    return bindings;
  }
  return bindings.slice(0, start) + NATIVE_ENCODER + bindings.slice(end);
}

/** Whether `bindings` declares any of `names` (which the rewrite adds itself). */
function declaresAny(bindings, names) {
  return new RegExp(`\\b(?:var|let|const|function|class) (?:${names.join('|')})\\b`).test(bindings);
}

/** `bindings` with memory accessed through kept views, or unchanged with a warning. */
function withKeptMemoryViews(bindings) {
  if (!bindings.includes(DATA_VIEW_HELPER) || declaresAny(bindings, MEMORY_NAMES)) {
    unknownShape('the memory accessors componentize-js generated have an unknown shape');
    return bindings;
  }
  /** `views` after making sure the kept views reach `end`. */
  const reaching = (end, views) => `(${end} > $end && $memoryTo(${end}), ${views})`;
  const rewritten = bindings
    .replace(GET_WORD, (call, at, offset) =>
      Number(offset) % 4 === 0 ? `${reaching(`${at} + 4`, '$words')}[(${at}) >>> 2]` : call,
    )
    .replace(SET_WORD, (call, at, offset, value) =>
      Number(offset) % 4 === 0 ? `${reaching(`${at} + 4`, '$words')}[(${at}) >>> 2] = ${value}` : call,
    )
    .replace(VIEW_ACCESS, (_, method, type, at) => `${reaching(`${at} + ${WIDTH[type]}`, '$view')}.${method}(${at}, `)
    .replace(BYTES_VIEW, (_, ptr, len) => `new Uint8Array(${reaching(`${ptr} + ${len}`, '$buffer')}, ${ptr}, ${len})`)
    .replace(BYTES_COPY, (_, ptr, len) =>
      `new Uint8Array(${reaching(`${ptr} + ${len}`, '$buffer')}.slice(${ptr}, ${ptr} + ${len}))`,
    )
    .replace(ENCODER_VIEW, `new Uint8Array(${reaching('ptr + len', '$buffer')}, ptr, len)`);
  if (rewritten.includes('dataView($memory)')) {
    unknownShape('some memory accesses componentize-js generated have an unknown shape');
    return bindings;
  }
  return rewritten.replace(DATA_VIEW_HELPER, MEMORY_VIEWS + DATA_VIEW_HELPER);
}

/**
 * `body` with each `_debugLog(...)` line whose arguments have no effects
 * made `JCO_DEBUG && _debugLog(...)`, so that they are only built when the
 * switch is on. The arguments end at the matching parenthesis, counted
 * without regard to strings: arguments misread that way do not pass
 * QUIET_ARGUMENTS, and their line is left as it is.
 */
function withQuietDebugLog(body) {
  return body.replace(DEBUG_LINE, (line, indent, offset) => {
    let end = offset + line.length;
    for (let depth = 1; depth > 0 && end < body.length; end++) {
      if (body[end] === '(') depth++;
      else if (body[end] === ')') depth--;
    }
    const args = body.slice(offset + line.length, end - 1);
    return QUIET_ARGUMENTS.test(args) ? `${indent}JCO_DEBUG && _debugLog(` : line;
  });
}

/** `bindings` evaluated inside one function scope, or unchanged with a warning. */
function inOneScope(bindings) {
  const entryPoints = [...bindings.matchAll(ENTRY_POINT)].map((m) => m[1]);
  const awaited = [...bindings.matchAll(AWAITED_CALL)].length;
  const known =
    entryPoints.length > 0 &&
    awaited > 0 &&
    /^ *function bindExports\(/m.test(bindings) &&
    bindings.includes(DEBUG_CHECK) &&
    !declaresAny(bindings, ['JCO_DEBUG', ...STANDARD]);
  if (!known) {
    unknownShape('the exports componentize-js generated have an unknown shape');
    return bindings;
  }
  const body = withQuietDebugLog(bindings)
    .replace(DEBUG_CHECK, 'if (!JCO_DEBUG) { return; }')
    .replace(
      AWAITED_CALL,
      (_, ret, fn, args) =>
        `let ${ret} = ${fn}(${args});\n` +
        `    if (${ret} !== null && (typeof ${ret} === 'object' || typeof ${ret} === 'function') ` +
        `&& typeof ${ret}.then === 'function') { ${ret} = await ${ret}; }\n`,
    );
  const exposed = [...entryPoints, 'bindExports']
    .map((name) => `globalThis[${JSON.stringify(name)}] = ${name};`)
    .join('\n');
  return [
    '(() => {',
    `const { ${STANDARD.join(', ')} } = globalThis;`,
    'const JCO_DEBUG = Boolean(globalThis?.process?.env?.JCO_DEBUG);',
    body,
    exposed,
    '})();',
    '',
  ].join('\n');
}

const { splicer } = await import(pathToFileURL(join(PACKAGE, 'lib', 'spidermonkey-embedding-splicer.js')).href);
const spliceBindings = splicer.spliceBindings;
splicer.spliceBindings = (...args) => {
  const spliced = spliceBindings(...args);
  return { ...spliced, jsBindings: inOneScope(withKeptMemoryViews(withNativeStringEncoding(spliced.jsBindings))) };
};
await import(pathToFileURL(join(PACKAGE, 'src', 'cli.js')).href);
