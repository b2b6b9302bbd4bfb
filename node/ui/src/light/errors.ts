/**
 * The one error the verifier throws. Every refusal, whether the evidence is malformed, forged or
 * simply for another chain, is a `VerifyError` naming the step that refused it, so a page can
 * show where the chain of proofs broke without parsing messages.
 */

/** The steps of the verification path, as the page shows them. */
export type Step =
  | 'genesis'
  | 'header'
  | 'validators'
  | 'commit'
  | 'finality'
  | 'cluster state'
  | 'anchor state'
  | 'checkpoint'
  | 'certificate'
  | 'consistency'
  | 'inclusion'
  | 'record'
  | 'encoding';

/**
 * Machine-readable kinds of refusal a caller may act on: `not-enough-trust` (a skip the client
 * may retry half way, bisecting), `unsupported` (a chain this verifier leaves to the CLI).
 */
export type ErrorCode = 'not-enough-trust' | 'unsupported';

/** A refusal: `step` failed because of `reason`; the message is `${step}: ${reason}`. */
export class VerifyError extends Error {
  /** Which step refused. */
  readonly step: Step;
  /** Why, in words close to the Rust light client's. */
  readonly reason: string;
  /** Set for refusals a caller may act on (see {@link ErrorCode}). */
  readonly code: ErrorCode | undefined;

  /** A refusal of `step` for `reason`. */
  constructor(step: Step, reason: string, code?: ErrorCode) {
    super(`${step}: ${reason}`);
    this.name = 'VerifyError';
    this.step = step;
    this.reason = reason;
    this.code = code;
  }
}

/** Throws a {@link VerifyError}; typed `never` so callers can use it in expressions. */
export function fail(step: Step, reason: string, code?: ErrorCode): never {
  throw new VerifyError(step, reason, code);
}

/**
 * Runs `body`, turning anything it throws that is not a {@link VerifyError} into one of `step`
 * (a library throwing TypeError/RangeError on input it finds odd must still be a refusal, never a
 * crash the caller mistakes for a bug of its own).
 */
export function guard<T>(step: Step, body: () => T): T {
  try {
    return body();
  } catch (err) {
    if (err instanceof VerifyError) throw err;
    throw new VerifyError(step, err instanceof Error ? err.message : String(err));
  }
}
