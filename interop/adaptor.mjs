// Drives the official %ELO adaptor (`loro-adaptors` 0.6.1) over real `loro-crdt` 1.17.1 documents.
//
// `node adaptor.mjs produce` prints:
//   key <key id hex> <key hex>
//   container <name> <hex>      join: the forward deltas sent on join (two peers → two records)
//                               live: the delta sent for a local edit after joining
//                               snapshot: the snapshot a second adaptor sends when it is level with the server
//   text <utf8 hex>             the document text after everything
//   vv <hex>                    doc.version().encode() (Loro's own VV bytes, hash-map order)
//   vvjson <peer>=<counter>,... the same vector, ascending by peer
//
// `node adaptor.mjs consume` reads `key <key id hex> <key hex>`, `container <name> <hex>` and `vvdecode <name> <hex>`
// lines. Containers are imported, in order, by a fresh EloAdaptor into a fresh document; it prints
//   text <utf8 hex>, vv <hex>, vvjson <...>, decrypt-errors <n>, and `vvjson-of <name> <...>` per vvdecode line.
import { LoroDoc, VersionVector } from "loro-crdt";
import { EloAdaptor } from "loro-adaptors/loro";
import { hex, stdinLines, unhex, utf8, fromUtf8, waitFor } from "./common.mjs";

const vvJson = (vv) =>
  [...vv.toJSON().entries()]
    .map(([p, c]) => [BigInt(p), c])
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([p, c]) => `${p}=${c}`)
    .join(",");

function makeCtx(sent) {
  return {
    send: (updates) => sent.push(...updates),
    onJoinFailed: (reason) => {
      throw new Error(`join failed: ${reason}`);
    },
    onImportError: (err) => {
      throw err;
    },
  };
}

async function produce() {
  const keyId = "k-adaptor";
  const key = unhex("5a".repeat(16) + "c3".repeat(16));
  const out = [`key ${hex(utf8(keyId))} ${hex(key)}`];
  const config = { getPrivateKey: async () => ({ keyId, key }) };

  const a = new LoroDoc();
  a.setPeerId(1234n);
  a.getText("t").insert(0, "hello ");
  a.getMap("m").set("n", 1);
  a.commit();
  const b = new LoroDoc();
  b.setPeerId(98765432109876n);
  b.getText("t").insert(0, "world");
  b.commit();
  a.import(b.export({ mode: "update" }));

  const sent = [];
  const adaptor = new EloAdaptor(a, config);
  adaptor.setCtx(makeCtx(sent));
  await adaptor.handleJoinOk({ version: new Uint8Array() });
  await waitFor(() => sent.length >= 1);
  out.push(`container join ${hex(sent[0])}`);

  a.getText("t").insert(a.getText("t").length, "!");
  a.commit();
  await waitFor(() => sent.length >= 2);
  out.push(`container live ${hex(sent[1])}`);

  const c = new LoroDoc();
  c.import(a.export({ mode: "snapshot" }));
  const sent2 = [];
  const adaptor2 = new EloAdaptor(c, config);
  adaptor2.setCtx(makeCtx(sent2));
  await adaptor2.handleJoinOk({ version: c.version().encode() });
  await waitFor(() => sent2.length >= 1);
  out.push(`container snapshot ${hex(sent2[0])}`);

  out.push(`text ${hex(utf8(a.getText("t").toString()))}`);
  out.push(`vv ${hex(a.version().encode())}`);
  out.push(`vvjson ${vvJson(a.version())}`);
  adaptor.destroy();
  adaptor2.destroy();
  return out;
}

async function consume() {
  const keys = new Map();
  const containers = [];
  const decodes = [];
  for (const line of stdinLines()) {
    const [tag, x, y] = line.split(" ");
    if (tag === "key") keys.set(fromUtf8(unhex(x ?? "")), unhex(y));
    else if (tag === "container") containers.push(unhex(y));
    else if (tag === "vvdecode") decodes.push([x, unhex(y)]);
    else throw new Error(`bad line ${line}`);
  }
  let decryptErrors = 0;
  const adaptor = new EloAdaptor({
    getPrivateKey: async (keyId) => {
      const id = keyId ?? [...keys.keys()][0];
      const key = keys.get(id);
      if (!key) throw new Error(`unknown key ${id}`);
      return { keyId: id, key };
    },
    onDecryptError: () => {
      decryptErrors += 1;
    },
  });
  // The same path `applyUpdate` takes, awaited so the result is deterministic.
  for (const c of containers) await adaptor.importEloContainer(c);
  const doc = adaptor.getDoc();
  const out = [
    `text ${hex(utf8(doc.getText("t").toString()))}`,
    `vv ${hex(doc.version().encode())}`,
    `vvjson ${vvJson(doc.version())}`,
    `decrypt-errors ${decryptErrors}`,
  ];
  for (const [name, bytes] of decodes) out.push(`vvjson-of ${name} ${vvJson(VersionVector.decode(bytes))}`);
  adaptor.destroy();
  return out;
}

const mode = process.argv[2];
const lines = mode === "produce" ? await produce() : mode === "consume" ? await consume() : null;
if (!lines) throw new Error("usage: node adaptor.mjs produce|consume");
process.stdout.write(lines.join("\n") + "\n");
