/**
 * `console` inside a component: what a policy logs goes to the host (the contract's
 * `output`), which shows it with the decision (`tagpolicy eval`, `test`) and in the gate's log,
 * and caps it. `wit.js` installs it; tests build one over a fake `write`.
 * @module
 */

/**
 * One argument as `console.log` prints it: strings as they are, errors with their name and
 * message, everything else as JSON where it can be (bigints as numbers), else `String(value)`.
 * @param {unknown} value
 * @returns {string}
 */
export function formatValue(value) {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return `${value.name}: ${value.message}`;
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return String(value);
  try {
    const json = JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? Number(v) : v));
    return json ?? String(value);
  } catch {
    return String(value); // a cycle
  }
}

/**
 * A `console` whose every method writes its arguments, separated by spaces, as one line.
 * @param {(text: string) => void} write where the lines go
 * @returns {Console}
 */
export function makeConsole(write) {
  const line = (/** @type {unknown[]} */ ...values) => write(`${values.map(formatValue).join(' ')}\n`);
  const methods = Object.fromEntries(['log', 'info', 'warn', 'error', 'debug', 'trace'].map((name) => [name, line]));
  return /** @type {Console} */ (/** @type {unknown} */ (methods));
}
