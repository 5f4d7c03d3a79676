#!/usr/bin/env python3
"""Writes crates/apiserver/src/proto/fields.rs: the protobuf field table of the
Kubernetes messages the API server decodes and encodes (see src/proto/mod.rs).

Field numbers and wire types come from the k8s-pb crate's prost attributes, JSON
names from k8s-openapi's serializers (prost's snake_case loses `clusterIP`'s
capitals). Both crates must be in the cargo registry cache, for example after
`cargo fetch` in a scratch crate depending on k8s-pb 0.9 and k8s-openapi 0.29.

Two things the sources only say indirectly are derived here:

- Message names: prost re-cases Go's acronyms (`FCVolumeSource` is k8s-pb's
  `FcVolumeSource`), so a message finds its k8s-openapi struct by a
  case-insensitive match of its full name.
- Inline structs (Go's `json:",inline"`, such as `Volume.volumeSource`): in
  protobuf a field holding a message, in JSON its members are the parent's, so
  k8s-openapi has no struct for most of them (`VolumeSource`) and no field for
  them in the parent. A field is inline when the parent's k8s-openapi struct
  lacks it but has most of its message's members (see `inline_fields`); the
  members' JSON names then come from that parent (`downwardAPI`, `scaleIO`).
  The table keeps an inline field under its prost name; the codec flattens
  the fields `codec::is_inline` lists, which must be the ones derived here.

Regenerate, then check that the table, and the codec's inline list, are in sync
with the sources (prints nothing and exits 0 when they are):

    python3 crates/apiserver/tools/gen_proto_fields.py > crates/apiserver/src/proto/fields.rs
    python3 crates/apiserver/tools/gen_proto_fields.py --check

`--inline` prints the derived inline fields, one `Message.jsonName -> Message`
a line.
"""
import glob
import os
import re
import sys

REG = glob.glob(os.path.expanduser("~/.cargo/registry/src/*/"))
PB = sorted(p for r in REG for p in glob.glob(r + "k8s-pb-0.9.*"))[-1] + "/src/"
OA = sorted(p for r in REG for p in glob.glob(r + "k8s-openapi-0.29.*"))[-1] + "/src/v1_33/"
PROTO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "proto")

# Packages served (or decoded as request bodies) by the API server.
PACKAGES = [
    "api.core.v1", "api.rbac.v1", "api.coordination.v1", "api.discovery.v1",
    "api.events.v1", "api.authorization.v1", "api.authentication.v1", "api.apps.v1",
    "api.batch.v1", "api.networking.v1", "api.policy.v1", "api.autoscaling.v1",
    "api.autoscaling.v2", "api.storage.v1", "api.scheduling.v1",
    "api.admissionregistration.v1", "apimachinery.pkg.apis.meta.v1",
    "apimachinery.pkg.api.resource", "apimachinery.pkg.util.intstr",
    "apimachinery.pkg.runtime",
]

def openapi_names():
    """`package.type` (lower case) -> {normalized: json name} from k8s-openapi.

    Keyed in lower case because prost re-cases Go's acronyms in type names.
    """
    out = {}
    for path in glob.glob(OA + "**/*.rs", recursive=True):
        rel = os.path.relpath(os.path.dirname(path), OA).replace("/", ".")
        src = open(path).read()
        for m in re.finditer(r"pub struct (\w+) \{", src):
            names = set(re.findall(r'serialize_field\(&mut state, "([^"]+)"', src))
            key = (rel + "." + m.group(1)).lower()
            if key in out:
                sys.exit("k8s-openapi has two structs named %s in different cases" % key)
            out[key] = {norm(n): n for n in names}
    return out

def norm(name):
    return name.replace("r#", "").replace("_", "").replace("-", "").lower()

def camel(snake):
    parts = snake.replace("r#", "").split("_")
    return parts[0] + "".join(p[:1].upper() + p[1:] for p in parts[1:])

def short(message):
    return message.rsplit(".", 1)[1]

FIELD = re.compile(r"#\[prost\(([^\]]*?)tag = \"(\d+)\"\)\]\s*pub (r#\w+|\w+):", re.S)
STRUCT = re.compile(r"pub struct (\w+) \{(.*?)\n\}", re.S)

def resolve(package, rust_type):
    """A prost type path, relative to `package`, as `package.Type`."""
    t = rust_type.replace("::prost::alloc::vec::Vec<", "").replace("::core::option::Option<", "")
    t = t.replace(">", "").strip().rstrip(",").strip()
    parts = package.split(".")
    segs = t.split("::")
    for s in segs[:-1]:
        if s == "super":
            parts.pop()
        elif s:
            parts.append(s)
    return ".".join(parts + [segs[-1]])

def messages():
    """`package.Type` -> (package, [(tag, prost name, prost attributes, rust type)])."""
    out = {}
    for pkg in PACKAGES:
        path = PB + pkg.replace(".", "/") + "/mod.rs"
        src = open(path).read()
        for m in STRUCT.finditer(src):
            fields = []
            body = m.group(2)
            for f in FIELD.finditer(body):
                attrs, tag, name = f.groups()
                rust_type, depth = "", 0
                for ch in body[f.end():]:
                    if ch == "<":
                        depth += 1
                    elif ch == ">":
                        depth -= 1
                    elif ch == "," and depth == 0:
                        break
                    rust_type += ch
                attrs = attrs.strip().rstrip(",")
                fields.append((int(tag), name, attrs, " ".join(rust_type.split())))
            out[pkg + "." + m.group(1)] = (pkg, fields)
    return out

def single_message(pkg, attrs, rust_type):
    """The message a non-repeated message field holds, else None."""
    if attrs.split(",")[0].strip() != "message" or "repeated" in attrs:
        return None
    return resolve(pkg, rust_type)

def inline_fields(msgs, names):
    """{(parent message, prost field name): inlined message}.

    A field is inline when its parent's k8s-openapi struct has no member of its
    name but has most of the JSON members its message brings (an inline field's
    own inline fields expanded, as `NamedRuleWithOperations` inlines
    `RuleWithOperations`, which inlines `Rule`). Over k8s-pb 0.9 and
    k8s-openapi 0.29 the split is wide: inline fields' members are all found
    except ones newer than Kubernetes 1.33 (`restartPolicyRules`), other fields'
    members none.
    """
    inline, flat = {}, {}

    def members(message, seen=()):
        """Normalized JSON members of a message, its inline fields expanded."""
        if message in flat:
            return flat[message]
        out = set()
        pkg, fields = msgs[message]
        known = names.get(message.lower())
        for _, name, attrs, rust_type in fields:
            inner = single_message(pkg, attrs, rust_type)
            if known is not None and inner in msgs and inner not in seen \
                    and norm(name) not in known:
                sub = members(inner, seen + (message,))
                if 2 * len(sub & set(known)) > len(sub):
                    inline[(message, name)] = inner
                    out |= sub
                    continue
            out.add(norm(name))
        flat[message] = out
        return out

    for message in msgs:
        members(message)
    return inline

def json_names(msgs, names, inline):
    """`package.Type` -> {normalized: json name}: its k8s-openapi struct's, else
    (an inline struct) the structs' it is inlined in."""
    out = {m: dict(names.get(m.lower(), {})) for m in msgs}
    for (parent, _), inner in sorted(inline.items()):
        if inner.lower() not in names:
            out[inner].update(out[parent])
    return out

SCALARS = {"string": "Str", "bytes": "Bytes", "bool": "Bool", "int32": "I32",
           "int64": "I64"}

def table(msgs, known_names):
    """The text of fields.rs."""
    lines = [
        "// Generated by crates/apiserver/tools/gen_proto_fields.py from the k8s-pb 0.9",
        "// and k8s-openapi 0.29 crates; do not edit.",
        "",
        "use super::table::{Card::*, F, Field, Ty::*};",
        "",
        "/// Every message: its full name and fields, sorted by name.",
        "#[rustfmt::skip]",
        "pub(super) static MESSAGES: &[(&str, &[Field])] = &[",
    ]
    for full in sorted(msgs):
        pkg, fields = msgs[full]
        known = known_names[full]
        rows = []
        for tag, name, attrs, rust_type in fields:
            json = known.get(norm(name), camel(name))
            kind = attrs.split(",")[0].split("=")[0].strip()
            if kind.startswith("btree_map"):
                value = attrs.split('"')[1].split(",")[1].strip()
                if value == "message":
                    inner = rust_type.split(",", 1)[1].rsplit(">", 1)[0]
                    ty = 'M("%s")' % resolve(pkg, inner)
                else:
                    ty = SCALARS[value]
                card = "Map"
            else:
                card = "Many" if "repeated" in attrs else "One"
                if kind == "message":
                    ty = 'M("%s")' % resolve(pkg, rust_type)
                else:
                    ty = SCALARS[kind]
            rows.append('F(%d, "%s", %s, %s)' % (tag, json, ty, card))
        lines.append('    ("%s", &[%s]),' % (full, ", ".join(rows)))
    lines.append("];")
    return "\n".join(lines) + "\n"

def inline_pairs(inline):
    """The derived inline fields as `codec::is_inline` names them: (JSON name,
    message's short name)."""
    return {(camel(name), short(inner)) for (_, name), inner in inline.items()}

def codec_inline_pairs():
    """The (JSON name, short name) pairs of `codec::is_inline`'s `matches!`."""
    src = open(os.path.join(PROTO, "codec.rs")).read()
    body = re.search(r"fn is_inline\(.*?\n\}", src, re.S)
    if body is None:
        sys.exit("codec.rs has no fn is_inline")
    return set(re.findall(r'\("(\w+)", "(\w+)"\)', body.group(0)))

def check(text, inline):
    """Differences between the generated table and inline list and the
    checked-in fields.rs and codec.rs, one a line."""
    problems = []
    path = os.path.join(PROTO, "fields.rs")
    current = open(path).read()
    if current != text:
        new, old = text.splitlines(), current.splitlines()
        for i in range(max(len(new), len(old))):
            a = old[i] if i < len(old) else "<end of file>"
            b = new[i] if i < len(new) else "<end of file>"
            if a != b:
                problems.append("fields.rs line %d differs: generated %s" % (i + 1, b[:120]))
    derived, listed = inline_pairs(inline), codec_inline_pairs()
    for json, message in sorted(derived - listed):
        problems.append("codec::is_inline misses (%r, %r)" % (json, message))
    for json, message in sorted(listed - derived):
        problems.append("codec::is_inline lists (%r, %r), not inline in the sources" % (json, message))
    return problems

def main():
    names = openapi_names()
    msgs = messages()
    inline = inline_fields(msgs, names)
    text = table(msgs, json_names(msgs, names, inline))
    args = sys.argv[1:]
    if args == ["--check"]:
        problems = check(text, inline)
        for p in problems:
            print(p)
        return 1 if problems else 0
    if args == ["--inline"]:
        for (parent, name), inner in sorted(inline.items()):
            print("%s.%s -> %s" % (parent, camel(name), inner))
        return 0
    if args:
        sys.exit("usage: gen_proto_fields.py [--check | --inline]")
    sys.stdout.write(text)
    return 0

if __name__ == "__main__":
    sys.exit(main())
