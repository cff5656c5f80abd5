"""Check Chainfin's evidence offline: ``python -m ledger.verify BUNDLE --key VKEY``.

This one file needs only the Python standard library and ``cryptography``: copy it anywhere,
give it an exported bundle and the bank's verifier key (published at
``/.well-known/chainfin-log-key`` and in the README), and it says what holds. It checks

* the checkpoint: a C2SP signed note (c2sp.org/signed-note, c2sp.org/tlog-checkpoint) signed
  by the bank's Ed25519 key, and any cosignatures (c2sp.org/tlog-cosignature) by the witness
  keys given with ``--witness``;
* every entry: its canonical body hashes to its hash, its receipt (chain, seq, hash) matches
  the body, consecutive entries of one chain link up, and its RFC 6962 inclusion proof leads
  from SHA-256(0x00 || entry hash) to the checkpoint's root;
* an optional consistency proof from an earlier checkpoint the holder of the bundle kept.

Exit status 0 when all holds, 1 otherwise (each failure is printed), 2 for unusable input.
The server uses the proof and note checks below too, so there is one implementation of each.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
ALG_ED25519 = 0x01  # c2sp.org/signed-note: Ed25519 note signatures
ALG_COSIGNATURE = 0x04  # c2sp.org/tlog-cosignature: timestamped Ed25519 cosignatures
COSIGNATURE_HEADER = b"cosignature/v1\n"
BUNDLE_FORMAT = "chainfin-evidence-bundle/v1"
_EM_DASH = "\u2014"


class VerificationError(Exception):
    """A proof, note or signature that does not verify."""


# --- RFC 6962 / RFC 9162 Merkle trees -------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _inner_proof_size(index: int, size: int) -> int:
    return (index ^ (size - 1)).bit_length()


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, sibling in enumerate(proof):
        seed = node_hash(seed, sibling) if (index >> i) & 1 == 0 else node_hash(sibling, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, sibling in enumerate(proof):
        if (index >> i) & 1 == 1:
            seed = node_hash(sibling, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for sibling in proof:
        seed = node_hash(sibling, seed)
    return seed


def root_from_inclusion_proof(
    *, index: int, size: int, leaf: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` leads to from ``leaf`` (a leaf hash) at ``index`` of ``size``.

    RFC 9162 section 2.1.3.2, walked as transparency-dev/merkle does; the proof must have
    exactly the length the index and size imply.

    :raises VerificationError: the index is outside the tree, the leaf hash is not 32 bytes
        or the proof has the wrong length.
    """
    if not 0 <= index < size:
        raise VerificationError(f"index {index} is beyond tree size {size}")
    if len(leaf) != HASH_SIZE:
        raise VerificationError("a leaf hash must be 32 bytes")
    inner = _inner_proof_size(index, size)
    border = bin(index >> inner).count("1")
    if len(proof) != inner + border:
        raise VerificationError(f"inclusion proof has {len(proof)} hashes, wants {inner + border}")
    return _chain_border_right(_chain_inner(leaf, proof[:inner], index), proof[inner:])


def verify_inclusion(
    *, index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that the leaf hash ``leaf`` sits at ``index`` of the tree of ``size`` and ``root``.

    :raises VerificationError: it does not.
    """
    if root_from_inclusion_proof(index=index, size=size, leaf=leaf, proof=proof) != root:
        raise VerificationError("inclusion proof does not lead to the root")


def verify_consistency(
    *, size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree of ``size2`` and ``root2`` extends the one of ``size1`` and ``root1``.

    RFC 9162 section 2.1.4.2 with transparency-dev/merkle's edge cases: a proof from the empty
    tree proves nothing and is refused; equal sizes need an empty proof and equal roots.

    :raises VerificationError: it does not.
    """
    if size1 < 1 or size2 < size1:
        raise VerificationError(f"no consistency proof from size {size1} to {size2}")
    if size1 == size2:
        if proof or root1 != root2:
            raise VerificationError("equal sizes need an empty proof and equal roots")
        return
    if not proof:
        raise VerificationError("empty consistency proof")
    inner = _inner_proof_size(size1 - 1, size2)
    border = bin((size1 - 1) >> inner).count("1")
    shift = (size1 & -size1).bit_length() - 1  # trailing zero bits of size1
    inner -= shift
    # The proof starts with the root of the subtree of size 2^shift, unless that is size1 itself.
    seed, start = (root1, 0) if size1 == 1 << shift else (proof[0], 1)
    if len(proof) != start + inner + border:
        raise VerificationError(
            f"consistency proof has {len(proof)} hashes, wants {start + inner + border}"
        )
    rest = proof[start:]
    mask = (size1 - 1) >> shift
    old = _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    if old != root1:
        raise VerificationError("consistency proof does not lead to the first root")
    new = _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    if new != root2:
        raise VerificationError("consistency proof does not lead to the second root")


# --- C2SP signed notes, checkpoints and cosignatures ------------------------------------------


def key_id(name: str, alg: int, public_key: bytes) -> bytes:
    """SHA-256(key name || 0x0A || signature type || public key)[:4] (c2sp.org/signed-note)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4]


@dataclass(frozen=True, slots=True)
class Verifier:
    """A trusted key: its name, signature type (0x01 log, 0x04 cosigner) and Ed25519 key."""

    name: str
    alg: int
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.alg, self.public_key)

    @property
    def vkey(self) -> str:
        encoded = base64.b64encode(bytes([self.alg]) + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """Read ``<name>+<hex key id>+<base64(type || key)>``.

        :raises VerificationError: malformed, an unknown type, or a key id that does not match.
        """
        parts = vkey.strip().split("+", 2)  # the base64 key may hold "+"
        if len(parts) != 3 or not parts[0]:
            raise VerificationError(f"not a verifier key: {vkey!r}")
        name, hex_id, material = parts
        try:
            raw = base64.b64decode(material, validate=True)
        except binascii.Error as exc:
            raise VerificationError("verifier key material is not base64") from exc
        if len(raw) != 33 or raw[0] not in (ALG_ED25519, ALG_COSIGNATURE):
            raise VerificationError("only Ed25519 (0x01) and cosignature (0x04) keys are known")
        verifier = cls(name, raw[0], raw[1:])
        if verifier.key_id.hex() != hex_id.lower():
            raise VerificationError(f"key id {hex_id} does not match key {name}")
        return verifier


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes

    @property
    def line(self) -> str:
        encoded = base64.b64encode(self.key_id + self.signature).decode()
        return f"{_EM_DASH} {self.name} {encoded}\n"


@dataclass(frozen=True, slots=True)
class Note:
    text: str  # including its final newline
    signatures: tuple[NoteSignature, ...]


def note_parse(note: str) -> Note:
    """Split a signed note into its text and signature lines.

    :raises VerificationError: the note is malformed.
    """
    if any(ord(c) < 0x20 and c != "\n" for c in note):
        raise VerificationError("a note must not contain control characters")
    text, sep, block = note.rpartition("\n\n")
    if not sep or not block.endswith("\n"):
        raise VerificationError("a note is text, a blank line, then signature lines")
    signatures = []
    for line in block[:-1].split("\n"):
        dash, _, rest = line.partition(" ")
        name, _, encoded = rest.partition(" ")
        if dash != _EM_DASH or not name or "+" in name or " " in encoded:
            raise VerificationError(f"malformed signature line {line!r}")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise VerificationError(f"signature of {name} is not base64") from exc
        if len(raw) < 5:
            raise VerificationError(f"signature of {name} is too short")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    if len(signatures) > 100:
        raise VerificationError("too many signatures")
    return Note(text + "\n", tuple(signatures))


def _ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def cosigned_message(text: str, timestamp: int) -> bytes:
    """What a witness signs: c2sp.org/tlog-cosignature's Ed25519 message for ``text``."""
    return COSIGNATURE_HEADER + f"time {timestamp}\n".encode() + text.encode()


def signature_verify(verifier: Verifier, text: str, signature: NoteSignature) -> int | None:
    """Check one signature line of ``verifier`` over note ``text``; for a cosignature, return
    its timestamp.

    :raises VerificationError: it is the verifier's (name and key id) but does not verify.
    """
    if signature.name != verifier.name or signature.key_id != verifier.key_id:
        raise VerificationError(f"signature is not by {verifier.name}")
    if verifier.alg == ALG_ED25519:
        if not _ed25519_verify(verifier.public_key, signature.signature, text.encode()):
            raise VerificationError(f"signature of {verifier.name} does not verify")
        return None
    if len(signature.signature) != 8 + 64:
        raise VerificationError(f"cosignature of {verifier.name} has the wrong length")
    (timestamp,) = struct.unpack(">Q", signature.signature[:8])
    if timestamp >= 1 << 63 or not _ed25519_verify(
        verifier.public_key, signature.signature[8:], cosigned_message(text, timestamp)
    ):
        raise VerificationError(f"cosignature of {verifier.name} does not verify")
    return int(timestamp)


def note_verify(note: Note, verifier: Verifier) -> None:
    """Check that ``verifier`` signed ``note``; other keys' lines are ignored (the spec says so).

    :raises VerificationError: no line of the verifier, or one that does not verify.
    """
    own = [s for s in note.signatures if (s.name, s.key_id) == (verifier.name, verifier.key_id)]
    if not own:
        raise VerificationError(f"not signed by {verifier.name}")
    for signature in own:
        signature_verify(verifier, note.text, signature)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"


def checkpoint_parse(text: str) -> Checkpoint:
    """Read a checkpoint's note text (c2sp.org/tlog-checkpoint).

    :raises VerificationError: not origin, decimal size and base64 32-byte root.
    """
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or not lines[0]:
        raise VerificationError("a checkpoint is origin, size and root hash lines")
    origin, size, root, *extensions = lines[:-1]
    if not size.isdigit() or (size != "0" and size.startswith("0")) or not size.isascii():
        raise VerificationError(f"tree size {size!r} is not a decimal without leading zeroes")
    try:
        raw = base64.b64decode(root, validate=True)
    except binascii.Error as exc:
        raise VerificationError("root hash is not base64") from exc
    if len(raw) != HASH_SIZE or any(not line for line in extensions):
        raise VerificationError("root hash must be 32 bytes; extension lines non-empty")
    return Checkpoint(origin, int(size), raw, tuple(extensions))


# --- Bundles ----------------------------------------------------------------------------------


def _b64_list(values: Any) -> list[bytes]:
    if not isinstance(values, list):
        raise VerificationError("a proof is a list of base64 hashes")
    try:
        # The C decoder, strict (RFC 4648 alphabet and padding only): a bundle of a million
        # entries carries some twenty million of these.
        return [binascii.a2b_base64(v, strict_mode=True) for v in values]
    except (binascii.Error, TypeError) as exc:
        raise VerificationError("a proof hash is not base64") from exc


class ProvenTree:
    """One tree (size and root) and the nodes of it that proofs checked so far have proven.

    A bundle's entries all prove inclusion in the same checkpoint, and their proofs share most
    of their nodes: the leaves' neighbours, and the same nodes near the root in every proof.
    Once a proof has led to the root, every node it computed and every sibling it used is the
    tree's own (SHA-256 being collision resistant), and so is the rest of the proof above each
    node of its path. A later proof whose path meets such a node is proven there once the rest
    of it equals that rest: one list comparison instead of log2(n) hashes. The verdict is
    ``verify_inclusion``'s, proof for proof (every hash of every proof is still checked against
    the tree); a bundle of a whole tree costs about two hashes per entry instead of log2(n) + 1.
    """

    def __init__(self, size: int, root: bytes) -> None:
        self.size = size
        # The node of level l over leaf i is keyed (i >> l) << 6 | l; the root is the node of
        # the top level (the levels of the smallest power of two not below the size).
        self.top = (size - 1).bit_length() if size > 1 else 0
        self.known: dict[int, bytes] = {self.top: root} if size else {}
        # A proven path node -> the proof's hashes above it (the same for every leaf below it).
        self.above: dict[int, list[bytes]] = {self.top: []}

    def verify(self, *, index: int, leaf: bytes, proof: Sequence[bytes]) -> None:
        """Check that the leaf hash ``leaf`` sits at ``index`` of this tree.

        :raises VerificationError: it does not, or the proof is malformed.
        """
        size = self.size
        if not 0 <= index < size:
            raise VerificationError(f"index {index} is beyond tree size {size}")
        if len(leaf) != HASH_SIZE:
            raise VerificationError("a leaf hash must be 32 bytes")
        inner = _inner_proof_size(index, size)
        wanted = inner + bin(index >> inner).count("1")
        if len(proof) != wanted:
            raise VerificationError(f"inclusion proof has {len(proof)} hashes, wants {wanted}")
        proof = list(proof)
        known, above = self.known, self.above
        fresh: list[tuple[int, bytes]] = []
        path: list[tuple[int, int]] = []  # fresh path nodes and where the proof above starts
        seed, pos, used = leaf, index, 0
        # RFC 9162's walk (as root_from_inclusion_proof), a level at a time: below ``inner``
        # every level takes a sibling; above it only right children do (the right border).
        for level in range(self.top + 1):
            key = pos << 6 | level
            have = known.get(key)
            if have is None:
                fresh.append((key, seed))
                path.append((key, used))
            elif have != seed:
                raise VerificationError("inclusion proof does not lead to the root")
            elif key in above:
                if proof[used:] != above[key]:
                    raise VerificationError("inclusion proof does not lead to the root")
                break
            if level < inner or pos & 1:
                sibling = proof[used]
                used += 1
                proven = known.get((pos ^ 1) << 6 | level)
                if proven is None:
                    fresh.append(((pos ^ 1) << 6 | level, sibling))
                elif proven != sibling:
                    raise VerificationError("inclusion proof does not lead to the root")
                seed = node_hash(sibling, seed) if pos & 1 else node_hash(seed, sibling)
            pos >>= 1
        # Reached only through the top (the root) or a proven node: the proof holds.
        known.update(fresh)
        for key, start in path:
            if key & 63:  # a leaf's own rest is only ever met again by the same entry twice
                above[key] = proof[start:]


def _entry_check(item: dict[str, Any], tree: ProvenTree, links: dict[str, Any]) -> str:
    """Check one bundled entry; return what it proved.

    :raises VerificationError: what does not hold.
    """
    body = item["body"].encode()
    digest = hashlib.sha256(body).hexdigest()
    if digest != item["hash"]:
        raise VerificationError("body does not hash to its hash (the body was altered)")
    envelope = json.loads(body)
    chain, seq = envelope.get("chain"), envelope.get("seq")
    receipt = item.get("receipt")
    if receipt is not None and (receipt["merchant_id"], receipt["seq"], receipt["hash"]) != (
        chain,
        seq,
        digest,
    ):
        raise VerificationError("the receipt names another entry than the body")
    earlier = links.get(chain)
    if earlier is not None and earlier[0] + 1 == seq and envelope.get("prev") != earlier[1]:
        raise VerificationError(f"does not link to entry {earlier[0]} of its chain")
    links[chain] = (seq, digest)
    tree.verify(
        index=item["log_index"],
        leaf=leaf_hash(bytes.fromhex(digest)),
        proof=_b64_list(item["inclusion_proof"]),
    )
    return f"{chain} seq {seq} is log entry {item['log_index']} of {tree.size}"


def bundle_verify(
    bundle: dict[str, Any], log_key: Verifier, witnesses: Sequence[Verifier] = ()
) -> tuple[list[str], list[str]]:
    """Check everything a bundle claims; return (what holds, what fails), one line each."""
    holds: list[str] = []
    fails: list[str] = []
    if bundle.get("format") != BUNDLE_FORMAT:
        return holds, [f"not a {BUNDLE_FORMAT} bundle"]
    try:
        note = note_parse(bundle["checkpoint"])
        note_verify(note, log_key)
        checkpoint = checkpoint_parse(note.text)
    except (VerificationError, KeyError, TypeError) as exc:
        return holds, [f"checkpoint: {exc}"]
    if checkpoint.origin != log_key.name:
        fails.append(f"checkpoint: origin {checkpoint.origin!r} is not {log_key.name!r}")
    holds.append(f"checkpoint signed by {log_key.name}: tree size {checkpoint.size}")
    for witness in witnesses:
        lines = [s for s in note.signatures if (s.name, s.key_id) == (witness.name, witness.key_id)]
        try:
            if not lines:
                raise VerificationError("no cosignature")
            stamp = signature_verify(witness, note.text, lines[0])
            holds.append(f"cosigned by witness {witness.name} at {stamp}")
        except VerificationError as exc:
            fails.append(f"witness {witness.name}: {exc}")
    links: dict[str, Any] = {}
    tree = ProvenTree(checkpoint.size, checkpoint.root)
    for n, item in enumerate(bundle.get("entries", [])):
        try:
            holds.append(f"entry {n}: {_entry_check(item, tree, links)}")
        except (VerificationError, KeyError, TypeError, ValueError) as exc:
            fails.append(f"entry {n}: {exc}")
    earlier = bundle.get("consistency")
    if earlier is not None:
        try:
            old = checkpoint_parse(earlier["checkpoint"])
            verify_consistency(
                size1=old.size,
                size2=checkpoint.size,
                proof=_b64_list(earlier["proof"]),
                root1=old.root,
                root2=checkpoint.root,
            )
            holds.append(f"tree {checkpoint.size} extends the earlier tree {old.size}")
        except (VerificationError, KeyError, TypeError) as exc:
            fails.append(f"consistency with the earlier checkpoint: {exc}")
    return holds, fails


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a Chainfin evidence bundle offline.")
    parser.add_argument("bundle", help="the bundle (JSON) exported by Chainfin")
    parser.add_argument("--key", help="the bank's verifier key (default: the bundle's own)")
    parser.add_argument("--witness", action="append", default=[], help="a witness's vkey")
    args = parser.parse_args(argv)
    try:
        with open(args.bundle, encoding="utf-8") as file:
            bundle = json.load(file)
        trusted = args.key is not None
        log_key = Verifier.parse(args.key if trusted else bundle["log_key"])
        witnesses = [Verifier.parse(w) for w in args.witness]
    except (OSError, ValueError, KeyError, VerificationError) as exc:
        print(f"unusable input: {exc}", file=sys.stderr)
        return 2
    if not trusted:
        print("NOTE: the bank's key was taken from the bundle itself; pass --key to trust it.")
    holds, fails = bundle_verify(bundle, log_key, witnesses)
    for line in holds:
        print(f"ok    {line}")
    for line in fails:
        print(f"FAIL  {line}")
    print("VERIFIED" if not fails else f"NOT VERIFIED: {len(fails)} failure(s)")
    return 0 if not fails else 1


if __name__ == "__main__":
    sys.exit(main())
