#!/usr/bin/env node
// Runs componentize-js (the `cli.js` of the copy in ./node_modules, with
// the same arguments) with one change to the JavaScript bindings it
// generates: strings returned to the host are encoded with the engine's
// native TextEncoder instead of the generated code's loop.
//
// Why: the generated `_utf8AllocateAndEncode` first counts the UTF-8 bytes
// of every returned string with a `charCodeAt` loop that SpiderMonkey runs
// in its interpreter, about ten bytecodes per character. For an event's
// `raw` JSON of a few hundred bytes that loop is a large part of a warm
// call (docs/plugins.md has the figures). The bytes written are the same:
// a lone surrogate becomes U+FFFD (3 bytes) either way, and exactly the
// encoded length is allocated.
//
// The replacement is made only where the generated function has the shape
// it was written against and no generated code reads the `codepoints` it
// also returned; otherwise the bindings are left as generated (the
// component is then correct, only slower) and a warning says so, or, with
// COMPONENTIZE_NATIVE_STRINGS=require (plugboard's own build), the build
// fails.

import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const PACKAGE = join(process.cwd(), 'node_modules', '@bytecodealliance', 'componentize-js');
const ORIGINAL = 'function _utf8AllocateAndEncode(s, realloc, memory) {';
const COUNT_LOOP = 's.charCodeAt(i)';
const NATIVE = `function _utf8AllocateAndEncode(s, realloc, memory) {
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

/** `bindings` with the string encoder replaced, or unchanged with a warning. */
function withNativeStringEncoding(bindings) {
  const start = bindings.indexOf(ORIGINAL);
  const end = start < 0 ? -1 : bindings.indexOf('\n}\n', start) + 3;
  const known =
    end > start &&
    bindings.slice(start, end).includes(COUNT_LOOP) &&
    bindings.slice(start, end).includes('TEXT_ENCODER_UTF8') &&
    !(bindings.slice(0, start) + bindings.slice(end)).includes('.codepoints');
  if (known) {
    return bindings.slice(0, start) + NATIVE + bindings.slice(end);
  }
  const problem = 'componentize.mjs: the string encoder componentize-js generated has an unknown shape';
  if (process.env.COMPONENTIZE_NATIVE_STRINGS === 'require') {
    throw new Error(`${problem} (update componentize.mjs for this componentize-js)`);
  }
  console.warn(`${problem}; bindings left as generated`);
  return bindings;
}

const { splicer } = await import(pathToFileURL(join(PACKAGE, 'lib', 'spidermonkey-embedding-splicer.js')).href);
const spliceBindings = splicer.spliceBindings;
splicer.spliceBindings = (...args) => {
  const spliced = spliceBindings(...args);
  return { ...spliced, jsBindings: withNativeStringEncoding(spliced.jsBindings) };
};
await import(pathToFileURL(join(PACKAGE, 'src', 'cli.js')).href);
