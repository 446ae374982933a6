/**
 * tagpolicy-guest: the JavaScript SDK for tagpolicy policies. Mirrors the Rust SDK:
 * `definePolicy` (the export), `Findings`, `Request`/`Change`, settings readers with
 * field-path errors, host-matched `Pattern`/`Patterns`, `repository`/`image` facts, and
 * time and tag helpers.
 *
 * Importing this module installs the host's imports (`wit.js`), so it only loads inside a
 * component. In node, import `sdk.js` (the same API) and call `setHost` with fakes.
 * @module
 */
import './wit.js';

export * from './sdk.js';
