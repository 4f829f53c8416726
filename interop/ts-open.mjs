// Opens containers with the official `loro-protocol` 0.3.0 TypeScript implementation.
// Input, one case a line: `<name> <keys> <container hex>`.
// Output, one case a line: `<name> ok <record>;<record>;...` where a record is
//   `d|<peer hex>|<start>|<end>|<key id hex>|<plaintext hex>` (DeltaSpan) or
//   `s|<peer hex>:<counter>/...|<key id hex>|<plaintext hex>` (Snapshot),
// or `<name> err <message>` when decoding or decryption fails.
import { decodeEloContainer, decryptEloRecord, EloRecordKind } from "loro-protocol";
import { hex, parseKeys, stdinLines, utf8 } from "./common.mjs";

const out = [];
for (const line of stdinLines()) {
  const [name, keysField, containerHex] = line.split(" ");
  const keys = parseKeys(keysField);
  try {
    const recs = [];
    for (const rec of decodeEloContainer(Buffer.from(containerHex, "hex"))) {
      const res = await decryptEloRecord(rec, async (keyId) => {
        const k = keys.get(keyId);
        if (!k) throw new Error(`unknown key ${keyId}`);
        return k;
      });
      const h = res.header;
      if (res.kind === EloRecordKind.DeltaSpan) {
        recs.push(`d|${hex(h.peerId)}|${h.start}|${h.end}|${hex(utf8(h.keyId))}|${hex(res.plaintext)}`);
      } else {
        const vv = h.vv.map((e) => `${hex(e.peerId)}:${e.counter}`).join("/");
        recs.push(`s|${vv}|${hex(utf8(h.keyId))}|${hex(res.plaintext)}`);
      }
    }
    out.push(`${name} ok ${recs.join(";")}`);
  } catch (e) {
    out.push(`${name} err ${String(e && e.message ? e.message : e).replace(/\s+/g, "_")}`);
  }
}
process.stdout.write(out.join("\n") + "\n");
