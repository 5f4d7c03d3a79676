//! The orderings Kubernetes derives from `hashutil.DeepHashObject`: an MD5
//! of go-spew's `%#v` rendering of a value (types shown, pointers
//! followed, nil as `<nil>`). `RepackSubsets` sorts Endpoints ports and
//! subsets by it and the EndpointSlice controller sorts slice ports by it,
//! so reproducing the rendering for these few types reproduces their
//! order exactly.

use std::fmt::Write as _;

use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, EndpointSubset};
use k8s_openapi::api::discovery::v1::EndpointPort as SlicePort;

/// MD5 (RFC 1321) of `data`.
pub fn md5(data: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    // K[i] = floor(abs(sin(i + 1)) * 2^32), RFC 1321's table.
    const K: [u32; 64] = [
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
        0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
        0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
        0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
        0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
        0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
        0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
        0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
        0xeb86d391,
    ];
    let mut state: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    let bit_len = (data.len() as u64).wrapping_mul(8);
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_le_bytes());
    for chunk in msg.chunks_exact(64) {
        let mut m = [0u32; 16];
        for (i, word) in chunk.chunks_exact(4).enumerate() {
            m[i] = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        }
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let rotated = a
                .wrapping_add(f)
                .wrapping_add(K[i])
                .wrapping_add(m[g])
                .rotate_left(S[i]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(rotated);
        }
        state[0] = state[0].wrapping_add(a);
        state[1] = state[1].wrapping_add(b);
        state[2] = state[2].wrapping_add(c);
        state[3] = state[3].wrapping_add(d);
    }
    let mut out = [0u8; 16];
    for (i, word) in state.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
    }
    out
}

fn ptr(out: &mut String, type_name: &str, value: Option<&str>) {
    match value {
        Some(v) => {
            let _ = write!(out, "(*{type_name}){v}");
        }
        None => {
            let _ = write!(out, "(*{type_name})<nil>");
        }
    }
}

fn core_port_body(out: &mut String, p: &EndpointPort) {
    let _ = write!(
        out,
        "{{Name:(string){} Port:(int32){} Protocol:(v1.Protocol){} AppProtocol:",
        p.name.as_deref().unwrap_or_default(),
        p.port,
        p.protocol.as_deref().unwrap_or_default()
    );
    ptr(out, "string", p.app_protocol.as_deref());
    out.push('}');
}

/// go-spew `%#v` of a `v1.EndpointPort`.
pub fn spew_endpoint_port(p: &EndpointPort) -> String {
    let mut out = String::from("(v1.EndpointPort)");
    core_port_body(&mut out, p);
    out
}

fn address_body(out: &mut String, a: &EndpointAddress) {
    let _ = write!(
        out,
        "{{IP:(string){} Hostname:(string){} NodeName:",
        a.ip,
        a.hostname.as_deref().unwrap_or_default()
    );
    ptr(out, "string", a.node_name.as_deref());
    out.push_str(" TargetRef:");
    match &a.target_ref {
        None => out.push_str("(*v1.ObjectReference)<nil>"),
        Some(r) => {
            let f = |v: &Option<String>| v.clone().unwrap_or_default();
            let _ = write!(
                out,
                "(*v1.ObjectReference){{Kind:(string){} Namespace:(string){} Name:(string){} UID:(types.UID){} APIVersion:(string){} ResourceVersion:(string){} FieldPath:(string){}}}",
                f(&r.kind),
                f(&r.namespace),
                f(&r.name),
                f(&r.uid),
                f(&r.api_version),
                f(&r.resource_version),
                f(&r.field_path)
            );
        }
    }
    out.push('}');
}

fn address_list(out: &mut String, list: Option<&Vec<EndpointAddress>>) {
    out.push_str("([]v1.EndpointAddress)");
    match list {
        None => out.push_str("<nil>"),
        Some(items) => {
            out.push('[');
            for (i, a) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                address_body(out, a);
            }
            out.push(']');
        }
    }
}

/// go-spew `%#v` of a `v1.EndpointSubset`.
pub fn spew_endpoint_subset(s: &EndpointSubset) -> String {
    let mut out = String::from("(v1.EndpointSubset){Addresses:");
    address_list(&mut out, s.addresses.as_ref());
    out.push_str(" NotReadyAddresses:");
    address_list(&mut out, s.not_ready_addresses.as_ref());
    out.push_str(" Ports:([]v1.EndpointPort)");
    match &s.ports {
        None => out.push_str("<nil>"),
        Some(ports) => {
            out.push('[');
            for (i, p) in ports.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                core_port_body(&mut out, p);
            }
            out.push(']');
        }
    }
    out.push('}');
    out
}

/// go-spew `%#v` of a `discovery/v1.EndpointPort`.
pub fn spew_slice_port(p: &SlicePort) -> String {
    let mut out = String::from("(v1.EndpointPort){Name:");
    ptr(&mut out, "string", p.name.as_deref());
    out.push_str(" Protocol:");
    ptr(&mut out, "v1.Protocol", p.protocol.as_deref());
    out.push_str(" Port:");
    ptr(&mut out, "int32", p.port.map(|n| n.to_string()).as_deref());
    out.push_str(" AppProtocol:");
    ptr(&mut out, "string", p.app_protocol.as_deref());
    out.push('}');
    out
}

/// The sort key Kubernetes uses: the MD5 of the rendering.
pub fn hash_key(rendered: &str) -> [u8; 16] {
    md5(rendered.as_bytes())
}
