// Seals records and containers with the official `loro-protocol` 0.3.0 TypeScript implementation.
// Output, one case a line: `<name> <keys> <container hex> <plaintexts>`, where keys is `idhex=keyhex,...` and
// plaintexts is `x<hex>,x<hex>,...` (one per record, in order).
import { encodeEloContainer, encryptDeltaSpan, encryptSnapshot } from "loro-protocol";
import { formatKeys, hex, unhex, utf8 } from "./common.mjs";

const key256 = unhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
const key128 = unhex("f0e1d2c3b4a5968778695a4b3c2d1e0f");
const keyAlt = unhex("a5".repeat(32));

function pattern(n, seed) {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

const cases = [];
async function emit(name, keys, recs) {
  const container = encodeEloContainer(recs.map((r) => r.record));
  cases.push(`${name} ${formatKeys(keys)} ${hex(container)} ${recs.map((r) => "x" + hex(r.pt)).join(",")}`);
}
async function delta(pt, peer, start, end, keyId, key, iv) {
  const { record } = await encryptDeltaSpan(pt, { peerId: peer, start, end, keyId, iv }, key);
  return { record, pt };
}
async function snapshot(pt, vv, keyId, key) {
  const { record } = await encryptSnapshot(pt, { vv, keyId }, key);
  return { record, pt };
}

// The spec's normative vector, sealed by TypeScript with its fixed IV.
await emit("normative", new Map([["k1", key256]]), [
  await delta(unhex("01026869"), unhex("01020304"), 1, 3, "k1", key256, unhex("86bcad09d5e7e3d70503a57e")),
]);
await emit("delta-aes256", new Map([["k256", key256]]), [
  await delta(utf8("hello from typescript"), utf8("12345"), 0, 7, "k256", key256),
]);
await emit("delta-aes128", new Map([["k128", key128]]), [
  await delta(pattern(300, 1), utf8("18446744073709551615"), 4000000000, 4294967295, "k128", key128),
]);
// encryptSnapshot sorts the entries itself; pass them unsorted.
await emit("snapshot-aes256", new Map([["snap", key256]]), [
  await snapshot(pattern(1000, 2), [
    { peerId: utf8("300"), counter: 1 },
    { peerId: utf8("3"), counter: 2 },
    { peerId: utf8("1234567890123"), counter: 77 },
    { peerId: unhex("ff00"), counter: 0 },
  ], "snap", key256),
]);
await emit("snapshot-aes128-empty-vv", new Map([["s128", key128]]), [await snapshot(pattern(40, 3), [], "s128", key128)]);
await emit(
  "multi-record",
  new Map([["a", key256], ["b", key128], ["", keyAlt], ["ключ-🔑", key256]]),
  [
    await delta(pattern(10, 4), utf8("7"), 0, 3, "a", key256),
    await delta(pattern(20, 5), utf8("7"), 3, 9, "b", key128),
    await delta(new Uint8Array(0), utf8("99"), 1, 2, "", keyAlt),
    await snapshot(pattern(64, 6), [{ peerId: utf8("7"), counter: 9 }, { peerId: utf8("99"), counter: 2 }], "ключ-🔑", key256),
    await delta(pattern(5, 7), unhex("00".repeat(64)), 10, 11, "b", key128),
  ],
);
await emit("large", new Map([["big", key256]]), [await delta(pattern(200 * 1024, 8), utf8("42"), 0, 1000, "big", key256)]);

process.stdout.write(cases.join("\n") + "\n");
