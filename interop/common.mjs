// Helpers shared by the interop scripts. Driven by tests/elo_interop.rs: hex over stdin/stdout, one item a line.
import { readFileSync } from "node:fs";

export const hex = (u8) => Buffer.from(u8).toString("hex");
export const unhex = (s) => new Uint8Array(Buffer.from(s, "hex"));
export const utf8 = (s) => new TextEncoder().encode(s);
export const fromUtf8 = (u8) => new TextDecoder("utf-8", { fatal: true }).decode(u8);

/** Lines of stdin, trimmed, without empty ones. */
export function stdinLines() {
  return readFileSync(0, "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

/** `idhex=keyhex,...` → Map(keyId → key bytes). */
export function parseKeys(field) {
  const keys = new Map();
  for (const part of field.split(",")) {
    const [id, key] = part.split("=");
    keys.set(fromUtf8(unhex(id)), unhex(key));
  }
  return keys;
}

/** Map(keyId → key bytes) → `idhex=keyhex,...`. */
export function formatKeys(keys) {
  return [...keys.entries()].map(([id, key]) => `${hex(utf8(id))}=${hex(key)}`).join(",");
}

/** Resolves until `cond()` holds, polling every 5 ms, or rejects after `ms`. */
export async function waitFor(cond, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}
