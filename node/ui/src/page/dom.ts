/** Small DOM helpers: elements by id, rows of text cells, and how values are shown. */
import { fromHex0x } from '../light/index.ts';

/** The element with `id` (the page's HTML has every id the script uses). */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element as T;
}

/** A new element with text content and optional class. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, text = '', className = ''): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (text) element.textContent = text;
  if (className) element.className = className;
  return element;
}

/** A table row of text cells (`mono` columns in a monospace font). */
export function row(cells: (string | Node)[], mono: number[] = []): HTMLTableRowElement {
  const tr = el('tr');
  cells.forEach((cell, i) => {
    const td = el('td', '', mono.includes(i) ? 'mono' : '');
    td.append(cell);
    tr.append(td);
  });
  return tr;
}

/** Replaces a table's body rows. */
export function fill(tableId: string, rows: HTMLTableRowElement[]): void {
  byId(tableId).querySelector('tbody')!.replaceChildren(...rows);
}

/** `0x`-hex cut to its first and last characters. */
export function short(hex: string, keep = 10): string {
  return hex.length > 2 * keep + 3 ? `${hex.slice(0, keep + 2)}…${hex.slice(-keep)}` : hex;
}

/** A `0x`-hex value as text when it is printable UTF-8, else as the hex. */
export function bytesText(hex: string | null | undefined): string {
  if (!hex) return '—';
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(fromHex0x(hex, 'value'));
    return /^[\P{C}\n\t]*$/u.test(text) ? JSON.stringify(text) : hex;
  } catch {
    return hex; // not hex, or not UTF-8
  }
}

/** A time in ms since the Unix epoch, as local date and time (`clock`: the time of day only). */
export function time(ms: unknown, clock = false): string {
  const n = Number(ms);
  if (!Number.isFinite(n) || n <= 0) return '—';
  return clock ? new Date(n).toLocaleTimeString() : new Date(n).toLocaleString();
}
