/**
 * The page's link to the node that served it: JSON-RPC calls over HTTP (what the verifier uses:
 * one answer per request, nothing shared between calls), and subscriptions over the node's
 * WebSocket, polled over HTTP instead when no WebSocket can be had (a proxy in front of the node
 * that does not pass upgrades, for example).
 */

/** A JSON-RPC error answer, with its code. */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'RpcError';
  }
}

/** How long a call may take before the page gives up on it (a node that never answers). */
const CALL_TIMEOUT_MS = 30_000;

/** JSON-RPC over HTTP POST to `endpoint` (the page's own origin by default). */
export async function call(method: string, params: object = {}, endpoint = '/'): Promise<unknown> {
  let text: string;
  let status: number;
  try {
    const response = await fetch(endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
      signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
    });
    status = response.status;
    text = await response.text();
  } catch (err) {
    throw new RpcError(-32603, `${method}: no answer from the node (${err instanceof Error ? err.message : String(err)})`);
  }
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    throw new RpcError(-32700, `${method}: the node's answer is not JSON (HTTP ${status})`);
  }
  if (answer === null || typeof answer !== 'object') throw new RpcError(-32603, `${method}: the node's answer is not a JSON-RPC response`);
  const { result, error } = answer as { result?: unknown; error?: { code?: unknown; message?: unknown } };
  if (error !== undefined) throw new RpcError(Number(error?.code ?? -32603), `${method}: ${String(error?.message ?? 'error')}`);
  if (!Object.hasOwn(answer, 'result')) throw new RpcError(-32603, `${method}: an answer without a result`);
  return result;
}

/** How the page follows the node: pushed over WebSocket, or polled. */
export type LiveMode = 'live' | 'polling';

type Handler = (value: unknown) => void;

/**
 * Subscriptions over one WebSocket. `subscribe` resolves once the node confirmed; a closed
 * socket is reported through `onClose` (the page then polls).
 */
export class Subscriptions {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly handlers = new Map<string, Handler>();

  private constructor(private readonly socket: WebSocket) {
    socket.addEventListener('message', (event) => this.receive(String(event.data)));
  }

  /** Opens the node's WebSocket (same origin); rejects when it cannot be opened within 5 s. */
  static open(onClose: () => void): Promise<Subscriptions> {
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/`;
    return new Promise((resolve, reject) => {
      let socket: WebSocket;
      try {
        socket = new WebSocket(url);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      const timer = setTimeout(() => {
        socket.close();
        reject(new Error('WebSocket: no answer in 5 s'));
      }, 5000);
      socket.addEventListener('open', () => {
        clearTimeout(timer);
        resolve(new Subscriptions(socket));
      });
      socket.addEventListener('error', () => {
        clearTimeout(timer);
        reject(new Error('WebSocket: could not connect'));
      });
      socket.addEventListener('close', () => onClose());
    });
  }

  /** Subscribes with `method`; `handler` gets each notification's `result`. */
  async subscribe(method: string, params: object, handler: Handler): Promise<string> {
    const id = this.nextId++;
    const confirmed = new Promise<unknown>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    const subscription = String(await confirmed);
    this.handlers.set(subscription, handler);
    return subscription;
  }

  /** Ends a subscription (`method`: its unsubscribe method). */
  unsubscribe(method: string, subscription: string): void {
    this.handlers.delete(subscription);
    if (this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify({ jsonrpc: '2.0', id: this.nextId++, method, params: [subscription] }));
    }
  }

  private receive(text: string): void {
    let message: { id?: number; result?: unknown; error?: { code: number; message: string }; params?: { subscription: string; result: unknown } };
    try {
      message = JSON.parse(text);
    } catch {
      return; // not JSON: nothing the page asked for
    }
    if (typeof message.id === 'number') {
      const waiting = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (!waiting) return;
      if (message.error) waiting.reject(new RpcError(message.error.code, message.error.message));
      else waiting.resolve(message.result);
      return;
    }
    const params = message.params;
    if (params) this.handlers.get(String(params.subscription))?.(params.result);
  }
}
