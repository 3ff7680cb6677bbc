"""Regenerate quic_rfc9001_client_initial.hex and quic_rfc9369_client_initial.hex: protect
the RFC 9001 A.2 / RFC 9369 A.2 client Initial payload (the CRYPTO frame, PADDING to 1162
bytes) with python `cryptography`, independently of the Rust code, and check the result
against the RFCs' published first and last 32 bytes (the last 16 are the AEAD tag, so a
match means every byte matches)."""
import hashlib, hmac, pathlib
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HERE = pathlib.Path(__file__).parent
CRYPTO_FRAME = bytes.fromhex(
    "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868"
    "04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578"
    "616d706c652e636f6dff01000100000a00080006001d00170018001000070005"
    "04616c706e000500050100000000003300260024001d00209370b2c9caa47fba"
    "baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400"
    "0d0010000e0403050306030203080408050806002d00020101001c0002400100"
    "3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000"
    "75300901100f088394c8f03e51570806048000ffff")
DCID = bytes.fromhex("8394c8f03e515708")

def expand_label(secret, label, length):
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(secret, block + info + bytes([i]), hashlib.sha256).digest()
        out, i = out + block, i + 1
    return out[:length]

def protect(salt, prefix, header_hex):
    initial = hmac.new(bytes.fromhex(salt), DCID, hashlib.sha256).digest()
    client = expand_label(initial, b"client in", 32)
    key, iv, hp = (expand_label(client, prefix + s, n)
                   for s, n in ((b" key", 16), (b" iv", 12), (b" hp", 16)))
    header = bytearray(bytes.fromhex(header_hex))
    nonce = bytes(a ^ b for a, b in zip(iv, (2).to_bytes(12, "big")))  # packet number 2
    payload = CRYPTO_FRAME + bytes(1162 - len(CRYPTO_FRAME))
    sealed = AESGCM(key).encrypt(nonce, payload, bytes(header))
    mask = Cipher(algorithms.AES(hp), modes.ECB()).encryptor().update(sealed[:16])[:5]
    header[0] ^= mask[0] & 0x0F
    for i in range(4):
        header[18 + i] ^= mask[1 + i]
    return bytes(header) + sealed

def write(name, packet, head, tail):
    text = packet.hex()
    assert len(packet) == 1200 and text.startswith(head) and text.endswith(tail), name
    (HERE / name).write_text("\n".join(text[i:i + 64] for i in range(0, len(text), 64)) + "\n")

write("quic_rfc9001_client_initial.hex",
      protect("38762cf7f55934b34d179ae6a4c80cadccbb7f0a", b"quic",
              "c300000001088394c8f03e5157080000449e00000002"),
      "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11",
      "7e78bfe706ca4cf5e9c5453e9f7cfd2b8b4c8d169a44e55c88d4a9a7f9474241"
      "e221af44860018ab0856972e194cd934")
write("quic_rfc9369_client_initial.hex",
      protect("0dede3def700a6db819381be6e269dcbf9bd2ed9", b"quicv2",
              "d36b3343cf088394c8f03e5157080000449e00000002"),
      "d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485",
      "6f4c4938ae79324dc402894b44faf8afbab35282ab659d13c93f70412e85cb19"
      "9a37ddec600545473cfb5a05e08d0b209973b2172b4d21fb69745a262ccde96b"
      "a18b2faa745b6fe189cf772a9f84cbfc")
print("ok")
