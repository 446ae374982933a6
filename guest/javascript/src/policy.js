/**
 * `definePolicy`: turn a rule into the `policy` export the host calls.
 * @module
 */
import { describe } from './errors.js';
import { Findings, report } from './findings.js';
import { host } from './host.js';
import { Request } from './request.js';
import { SettingsError, object, parseSettings } from './settings.js';

/**
 * @template S, T
 * @typedef {object} PolicySpec
 * @property {string} name short, stable name (`lowercase-with-dashes`)
 * @property {string} version the policy's own version, e.g. `0.1.0`
 * @property {string} description one line saying what the policy enforces
 * @property {string} settingsExample example settings as JSON text, shown by `tagpolicy inspect`
 * @property {import('./settings.js').Reader<S>} [settings] reads the operator's settings
 *   (usually `object(...)`); without it the policy takes none (`{}`)
 * @property {(settings: S) => T} [configure] check the read settings and build the state
 *   `evaluate` gets (default: the settings). Throw a string to refuse them; name the field:
 *   `settings.owners[0].actors: empty; ...`
 * @property {(request: Request, findings: Findings, state: T) => void} evaluate decide one
 *   request: report each reason to refuse or warn on `findings`; reporting nothing allows
 */

/**
 * The policy interface as componentize-js exports it.
 * @typedef {object} PolicyExport
 * @property {() => { name: string, version: string, description: string, settingsExample: string }} metadata
 * @property {(settings: string) => void} configure throws the error text (a string)
 * @property {(request: import('./request.js').RawRequest) => void} evaluate
 */

/**
 * Define a policy; export the result as `policy`:
 * `export const policy = definePolicy({ name, version, description, settingsExample, settings, configure, evaluate })`.
 * @template S, T
 * @param {PolicySpec<S, T>} spec
 * @returns {PolicyExport}
 * @example
 * import { definePolicy, repository, settings as s } from 'tagpolicy-guest';
 *
 * export const policy = definePolicy({
 *   name: 'min-tags',
 *   version: '0.1.0',
 *   description: 'Keep at least `minTags` tags',
 *   settingsExample: '{"minTags": 3}',
 *   settings: s.object('Settings', { minTags: s.u32() }),
 *   configure(settings) {
 *     if (settings.minTags === 0) throw 'settings.minTags: 0 keeps no tag; give at least 1';
 *     return settings;
 *   },
 *   evaluate(request, findings, settings) {
 *     const deleted = request.changes().filter((change) => change.kind === 'delete').length;
 *     if (deleted > 0 && repository.countTags() - deleted < settings.minTags) {
 *       findings.denyRequest(`the repository keeps at least ${settings.minTags} tags`);
 *     }
 *   },
 * });
 */
export function definePolicy(spec) {
  for (const key of ['name', 'version', 'description', 'settingsExample']) {
    if (typeof spec[key] !== 'string') throw new Error(`definePolicy: \`${key}\` must be a string`);
  }
  if (typeof spec.evaluate !== 'function') throw new Error('definePolicy: `evaluate` must be a function');
  // The host calls `configure` and `evaluate` synchronously: what an async function decides
  // after its first `await` would be lost, and its errors with it. Refused when the module
  // loads, which `tagpolicy build` does.
  for (const key of ['configure', 'evaluate']) {
    if (spec[key]?.constructor?.name === 'AsyncFunction') {
      throw new Error(`definePolicy: \`${key}\` must not be async: the host calls it synchronously`);
    }
  }
  const metadata = {
    name: spec.name,
    version: spec.version,
    description: spec.description,
    settingsExample: spec.settingsExample,
  };
  const readSettings = spec.settings ?? object('Settings', {});
  /** @type {{ state: T } | undefined} */
  let configured;

  return {
    metadata: () => ({ ...metadata }),

    configure(json) {
      try {
        const settings = parseSettings(json, readSettings);
        const state = spec.configure ? spec.configure(settings) : settings;
        if (isThenable(state)) throw new Error(returnedPromise('configure', state));
        configured = { state: state === undefined ? /** @type {T} */ (settings) : state };
      } catch (error) {
        // componentize-js turns a thrown string into the `result`'s error; anything else
        // would trap without saying why.
        if (typeof error === 'string') throw error;
        if (error instanceof SettingsError) throw error.message;
        throw `the policy failed while reading its settings: ${describe(error)}`;
      }
    },

    evaluate(raw) {
      const findings = new Findings();
      if (configured === undefined) {
        findings.denyRequest('the policy was evaluated before it was configured');
      } else {
        try {
          const result = spec.evaluate(new Request(raw), findings, configured.state);
          if (isThenable(result)) throw new Error(returnedPromise('evaluate', result));
        } catch (error) {
          // Not a decision: the host reports the policy's failure (and refuses the request,
          // as for a trap) with the error and the policy's line, which a trap loses
          // (componentize-js turns an uncaught exception into `unreachable`).
          host().verdict.fail(describe(error));
          return;
        }
      }
      report(findings.decision());
    },
  };
}

/** @param {unknown} value */
function isThenable(value) {
  return value !== null && typeof value === 'object' && typeof (/** @type {any} */ (value).then) === 'function';
}

/**
 * The error for a function that returned a promise: the host cannot wait for it.
 * @param {string} name
 * @param {PromiseLike<unknown>} promise
 */
function returnedPromise(name, promise) {
  // Its rejection, if any, would otherwise be reported as unhandled.
  Promise.resolve(promise).catch(() => {});
  return `\`${name}\` returned a promise: the host calls it synchronously and cannot wait for it; return the result instead`;
}
