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
//    the environment, which a component does not have) instead of at every
//    call, and an export with a result awaits the element's result only when
//    it is a promise (or another thenable, as `await` would resolve it); a
//    plain result is lowered without suspending the export for a turn of the
//    job queue. The export still returns a promise, as the embedding expects.
//    (`describe`, called once per load, keeps its `await`.)
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
const ENTRY_POINT = /^(?:async )?function (export_[\w$]+)\(/gm;
const AWAITED_CALL = /const (hostRet\d+) = await ([\w$]+)\(([\s\S]*?)\);\n/g;
/** Standard constructors the bindings use on every call, read once. */
const STANDARD = ['Uint8Array', 'DataView', 'TypeError', 'Array', 'Boolean'];

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
  const body = bindings
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
  return { ...spliced, jsBindings: inOneScope(withNativeStringEncoding(spliced.jsBindings)) };
};
await import(pathToFileURL(join(PACKAGE, 'src', 'cli.js')).href);
