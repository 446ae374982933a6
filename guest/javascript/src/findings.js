/**
 * Collect denials and warnings, then report them to the host as one decision.
 * @module
 */
import { host } from './host.js';

/**
 * Why a request is refused or reported: about one tag, or (`tag: undefined`) the request
 * as a whole.
 * @typedef {{ tag: string | undefined, reason: string }} Finding
 */

/**
 * A policy's answer: `allow`, `warn` with findings, or `deny` with findings (a denial
 * refuses the whole request: no tag of it is applied).
 * @typedef {{ outcome: 'allow' | 'warn' | 'deny', findings: Finding[] }} Decision
 */

/**
 * A decision under construction: any denial makes it a denial, otherwise any warning
 * makes it a warning, otherwise it allows. `evaluate` receives one and fills it.
 * @example
 * import { Findings } from 'tagpolicy-guest';
 * const findings = new Findings();
 * findings.warn('latest', '`latest` moves: pin a release instead');
 * findings.decision().outcome; // => 'warn'
 */
export class Findings {
  /** @type {Finding[]} */
  #denials = [];
  /** @type {Finding[]} */
  #warnings = [];

  /**
   * Refuse the request because of `tag`.
   * @param {string} tag
   * @param {string} reason one line a person can act on
   * @example
   * for (const change of request.changes()) {
   *   if (change.tag === 'latest' && change.kind === 'move') {
   *     findings.deny(change.tag, '`latest` only moves in the release job');
   *   }
   * }
   * findings.decision().findings; // => [{ tag: 'latest', reason: '`latest` only moves in the release job' }]
   */
  deny(tag, reason) {
    this.#denials.push({ tag, reason: String(reason) });
  }

  /**
   * Refuse the request as a whole (no single tag is to blame).
   * @param {string} reason
   * @example
   * if (request.actor().id === undefined) findings.denyRequest('anonymous pushes are refused');
   * findings.isDenied(); // => false
   */
  denyRequest(reason) {
    this.#denials.push({ tag: undefined, reason: String(reason) });
  }

  /**
   * Report something about `tag` without refusing.
   * @param {string} tag
   * @param {string} reason
   * @example
   * findings.warn('latest', '`latest` moves: consumers should pin a release');
   * findings.decision().outcome; // => 'warn'
   */
  warn(tag, reason) {
    this.#warnings.push({ tag, reason: String(reason) });
  }

  /**
   * Report something about the request as a whole without refusing.
   * @param {string} reason
   * @example
   * findings.warnRequest('pushed outside the release window');
   * findings.decision().findings[0].tag; // => undefined
   */
  warnRequest(reason) {
    this.#warnings.push({ tag: undefined, reason: String(reason) });
  }

  /**
   * Whether something was denied so far.
   * @returns {boolean}
   * @example
   * findings.deny('1.3.1', 'no signature');
   * findings.isDenied(); // => true
   */
  isDenied() {
    return this.#denials.length > 0;
  }

  /**
   * The decision: the denials if any (warnings are then dropped), else the warnings, else
   * an allow. The SDK reports it to the host after `evaluate`.
   * @returns {Decision}
   * @example
   * findings.warn('latest', 'moves');
   * findings.deny('1.3.1', 'no signature');
   * findings.decision(); // => { outcome: 'deny', findings: [{ tag: '1.3.1', reason: 'no signature' }] }
   */
  decision() {
    if (this.#denials.length > 0) return { outcome: 'deny', findings: [...this.#denials] };
    if (this.#warnings.length > 0) return { outcome: 'warn', findings: [...this.#warnings] };
    return { outcome: 'allow', findings: [] };
  }
}

/**
 * Tell the host: each finding through `verdict` (nothing for an allow).
 * @param {Decision} decision
 */
export function report(decision) {
  const { verdict } = host();
  if (decision.outcome === 'warn') {
    for (const f of decision.findings) verdict.warn(f.tag, f.reason);
  } else if (decision.outcome === 'deny') {
    // A denial must say why, or the host could not tell it from an allow.
    if (decision.findings.length === 0) verdict.deny(undefined, 'denied without a reason');
    for (const f of decision.findings) verdict.deny(f.tag, f.reason);
  }
}
