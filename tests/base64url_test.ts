import assert from "node:assert/strict";
import { decodeBase64Url, encodeBase64Url } from "../src/base64url.ts";

Deno.test("base64url: RFC 4648 vectors without padding, URL alphabet, round trip of 1 MiB", () => {
  const enc = new TextEncoder();
  for (
    const [plain, coded] of [
      ["", ""],
      ["f", "Zg"],
      ["fo", "Zm8"],
      ["foo", "Zm9v"],
      ["foob", "Zm9vYg"],
      ["fooba", "Zm9vYmE"],
      ["foobar", "Zm9vYmFy"],
    ]
  ) {
    assert.equal(encodeBase64Url(enc.encode(plain)), coded);
    assert.deepEqual(decodeBase64Url(coded), enc.encode(plain));
  }
  // 0xfb 0xff: "+/8" in base64, "-_8" here.
  assert.equal(encodeBase64Url(new Uint8Array([0xfb, 0xff])), "-_8");
  assert.deepEqual(decodeBase64Url("-_8"), new Uint8Array([0xfb, 0xff]));
  const big = crypto.getRandomValues(new Uint8Array(65536)).slice();
  const mib = new Uint8Array(1024 * 1024);
  for (let i = 0; i < 16; i++) mib.set(big, i * 65536);
  assert.deepEqual(decodeBase64Url(encodeBase64Url(mib)), mib);
});

Deno.test("base64url: another alphabet or an impossible length is a TypeError", () => {
  for (const bad of ["+/8", "a b", "Zm9v.", "Z", "Zm9vY"]) {
    assert.throws(() => decodeBase64Url(bad), TypeError, bad);
  }
});
