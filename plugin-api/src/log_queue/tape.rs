//! The tape: a log call's data as the caller's thread leaves it in the
//! queue. Writing JSON text costs the caller most of a call beyond building
//! its value (a float's shortest digits alone are a fifth of it), so the
//! caller records the value's shape and raw numbers instead, in a compact
//! binary form, and the log thread writes the JSON text from it.
//!
//! The text is exactly what `serde_json::to_writer` writes for the value:
//! numbers and strings are written by serde_json itself on the log thread,
//! and whatever the tape does not record as serde_json would (a
//! `RawValue`, an `i128`, a map key that is not a string or an integer) is
//! not recorded at all: [`record`] reports [`Fallback`], and the caller
//! writes the value's JSON text with serde_json, stored as one
//! [`Tag::Json`] item (which is also how serde_json's own errors, and a
//! `Serialize` impl's, reach the caller unchanged).

use std::fmt::Display;

use serde::ser::{self, Serialize};

/// One tape item's tag; the payload follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Tag {
    Null = 0,
    False = 1,
    True = 2,
    /// 8 bytes.
    U64 = 3,
    /// 8 bytes.
    I64 = 4,
    /// 8 bytes (the bits).
    F64 = 5,
    /// 4 bytes (the bits): serde_json writes an `f32`'s own shortest digits.
    F32 = 6,
    /// A u32 length, then UTF-8.
    Str = 7,
    SeqStart = 8,
    SeqEnd = 9,
    MapStart = 10,
    MapEnd = 11,
    /// A u32 length, then JSON text written by serde_json.
    Json = 12,
}

impl Tag {
    fn from_byte(byte: u8) -> Tag {
        [
            Tag::Null,
            Tag::False,
            Tag::True,
            Tag::U64,
            Tag::I64,
            Tag::F64,
            Tag::F32,
            Tag::Str,
            Tag::SeqStart,
            Tag::SeqEnd,
            Tag::MapStart,
            Tag::MapEnd,
            Tag::Json,
        ][byte as usize]
    }
}

/// The value is one the tape does not record as serde_json would write it
/// (or its `Serialize` impl failed): write its JSON text instead.
#[derive(Debug)]
pub(crate) struct Fallback;

impl Display for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not recorded on the tape")
    }
}

impl std::error::Error for Fallback {}

impl ser::Error for Fallback {
    fn custom<T: Display>(_: T) -> Self {
        Fallback
    }
}

/// Appends `value`'s tape to `out`; on [`Fallback`], `out` may hold part
/// of it (the caller truncates).
#[inline]
pub(crate) fn record(value: &(impl Serialize + ?Sized), out: &mut Vec<u8>) -> Result<(), Fallback> {
    value.serialize(&mut Recorder { out })
}

/// Appends `value`'s tape to `out` (empty), or, where the tape falls back,
/// the JSON text serde_json writes for it as one item; serde_json's error
/// (or the `Serialize` impl's) if it writes none.
#[inline]
pub(crate) fn record_or_json(value: &(impl Serialize + ?Sized), out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    if record(value, out).is_err() {
        out.clear();
        record_json(&serde_json::to_vec(value)?, out);
    }
    Ok(())
}

/// Appends `value`'s JSON text, written by serde_json here, to `out`
/// (empty) as one tape item: what a caller does when the log thread is
/// behind, so that the text is written by a thread that would otherwise
/// wait.
#[inline]
pub(crate) fn record_as_json(value: &(impl Serialize + ?Sized), out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    out.extend_from_slice(&[Tag::Json as u8, 0, 0, 0, 0]);
    serde_json::to_writer(&mut *out, value)?;
    let len = (out.len() - 5) as u32;
    out[1..5].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Appends JSON text written by serde_json as one tape item.
#[inline]
pub(crate) fn record_json(json: &[u8], out: &mut Vec<u8>) {
    out.push(Tag::Json as u8);
    push_len_and_bytes(out, json);
}

/// Whether a tape holds a JSON object (what `log` and `set_metrics` take).
#[inline]
pub(crate) fn is_object(tape: &[u8]) -> bool {
    match tape.first().map(|&byte| Tag::from_byte(byte)) {
        Some(Tag::MapStart) => true,
        Some(Tag::Json) => tape.get(5) == Some(&b'{'),
        _ => false,
    }
}

#[inline]
fn push_len_and_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Appends the JSON text of a tape [`record`] made to `out`.
pub(crate) fn write_json(mut tape: &[u8], out: &mut Vec<u8>) {
    // An explicit stack of the open arrays and objects rather than
    // recursion: the log thread's stack must not depend on how deep a
    // plugin's data is.
    let mut open = Open::default();
    while let Some((&byte, rest)) = tape.split_first() {
        tape = rest;
        let tag = Tag::from_byte(byte);
        if let Tag::SeqEnd | Tag::MapEnd = tag {
            out.push(if tag == Tag::SeqEnd { b']' } else { b'}' });
            open.pop();
            continue;
        }
        if let Some((is_object, items)) = open.last_mut() {
            match (*is_object, *items) {
                (_, 0) => {}
                (true, n) if n % 2 == 1 => out.push(b':'),
                _ => out.push(b','),
            }
            *items += 1;
        }
        match tag {
            Tag::Null => out.extend_from_slice(b"null"),
            Tag::False => out.extend_from_slice(b"false"),
            Tag::True => out.extend_from_slice(b"true"),
            Tag::U64 => write_scalar(out, u64::from_le_bytes(take(&mut tape))),
            Tag::I64 => write_scalar(out, i64::from_le_bytes(take(&mut tape))),
            Tag::F64 => write_scalar(out, f64::from_bits(u64::from_le_bytes(take(&mut tape)))),
            Tag::F32 => write_scalar(out, f32::from_bits(u32::from_le_bytes(take(&mut tape)))),
            Tag::Str => crate::log_entry::write_json_str(out, take_str(&mut tape)),
            Tag::Json => out.extend_from_slice(take_bytes(&mut tape)),
            Tag::SeqStart => {
                out.push(b'[');
                open.push(false);
            }
            Tag::MapStart => {
                out.push(b'{');
                open.push(true);
            }
            Tag::SeqEnd | Tag::MapEnd => unreachable!("handled above"),
        }
    }
}

/// The open arrays and objects of [`write_json`], each as whether it is an
/// object and how many items it has so far (an object's keys and values
/// alternate): the first levels in place, deeper ones on the heap, so that
/// the usual data costs no allocation.
#[derive(Default)]
struct Open {
    near: [(bool, u32); Open::NEAR],
    depth: usize,
    far: Vec<(bool, u32)>,
}

impl Open {
    const NEAR: usize = 16;

    fn push(&mut self, is_object: bool) {
        if self.depth < Self::NEAR {
            self.near[self.depth] = (is_object, 0);
        } else {
            self.far.push((is_object, 0));
        }
        self.depth += 1;
    }

    fn pop(&mut self) {
        if self.depth > Self::NEAR {
            self.far.pop();
        }
        self.depth = self.depth.saturating_sub(1);
    }

    fn last_mut(&mut self) -> Option<&mut (bool, u32)> {
        match self.depth {
            0 => None,
            depth if depth <= Self::NEAR => Some(&mut self.near[depth - 1]),
            _ => self.far.last_mut(),
        }
    }
}

fn write_scalar(out: &mut Vec<u8>, value: impl Serialize) {
    serde_json::to_writer(out, &value).expect("serde_json writes numbers and strings to a Vec");
}

fn take<const N: usize>(tape: &mut &[u8]) -> [u8; N] {
    let (bytes, rest) = tape.split_first_chunk::<N>().expect("the tape holds the item's bytes");
    *tape = rest;
    *bytes
}

fn take_bytes<'a>(tape: &mut &'a [u8]) -> &'a [u8] {
    let len = u32::from_le_bytes(take(tape)) as usize;
    let (bytes, rest) = tape.split_at(len);
    *tape = rest;
    bytes
}

fn take_str<'a>(tape: &mut &'a [u8]) -> &'a str {
    std::str::from_utf8(take_bytes(tape)).expect("the tape's strings were &str")
}

struct Recorder<'a> {
    out: &'a mut Vec<u8>,
}

impl Recorder<'_> {
    #[inline]
    fn tag(&mut self, tag: Tag) {
        self.out.push(tag as u8);
    }

    #[inline]
    fn str(&mut self, s: &str) {
        // The tag and the length in one copy, then the bytes.
        let [a, b, c, d] = (s.len() as u32).to_le_bytes();
        self.out.extend_from_slice(&[Tag::Str as u8, a, b, c, d]);
        self.out.extend_from_slice(s.as_bytes());
    }

    #[inline]
    fn bytes8(&mut self, tag: Tag, bytes: [u8; 8]) -> Result<(), Fallback> {
        let [a, b, c, d, e, f, g, h] = bytes;
        self.out.extend_from_slice(&[tag as u8, a, b, c, d, e, f, g, h]);
        Ok(())
    }

    /// `{"variant":` as serde_json opens an enum variant with data.
    #[inline]
    fn open_variant(&mut self, variant: &str) {
        self.tag(Tag::MapStart);
        self.str(variant);
    }
}

/// An open array or object; `in_variant` when it is a variant's data,
/// inside the `{"variant": ...}` object it also closes.
pub(crate) struct Compound<'r, 'a> {
    recorder: &'r mut Recorder<'a>,
    in_variant: bool,
}

impl Compound<'_, '_> {
    #[inline]
    fn close(self, tag: Tag) -> Result<(), Fallback> {
        self.recorder.tag(tag);
        if self.in_variant {
            self.recorder.tag(Tag::MapEnd);
        }
        Ok(())
    }
}

impl<'r, 'a> ser::Serializer for &'r mut Recorder<'a> {
    type Ok = ();
    type Error = Fallback;
    type SerializeSeq = Compound<'r, 'a>;
    type SerializeTuple = Compound<'r, 'a>;
    type SerializeTupleStruct = Compound<'r, 'a>;
    type SerializeTupleVariant = Compound<'r, 'a>;
    type SerializeMap = Compound<'r, 'a>;
    type SerializeStruct = Compound<'r, 'a>;
    type SerializeStructVariant = Compound<'r, 'a>;

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<(), Fallback> {
        self.tag(if v { Tag::True } else { Tag::False });
        Ok(())
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> Result<(), Fallback> {
        self.serialize_i64(v.into())
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> Result<(), Fallback> {
        self.serialize_i64(v.into())
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> Result<(), Fallback> {
        self.serialize_i64(v.into())
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Result<(), Fallback> {
        self.bytes8(Tag::I64, v.to_le_bytes())
    }
    #[inline]
    fn serialize_u8(self, v: u8) -> Result<(), Fallback> {
        self.serialize_u64(v.into())
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> Result<(), Fallback> {
        self.serialize_u64(v.into())
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> Result<(), Fallback> {
        self.serialize_u64(v.into())
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Result<(), Fallback> {
        self.bytes8(Tag::U64, v.to_le_bytes())
    }
    #[inline]
    fn serialize_f32(self, v: f32) -> Result<(), Fallback> {
        self.tag(Tag::F32);
        self.out.extend_from_slice(&v.to_bits().to_le_bytes());
        Ok(())
    }
    #[inline]
    fn serialize_f64(self, v: f64) -> Result<(), Fallback> {
        self.bytes8(Tag::F64, v.to_bits().to_le_bytes())
    }
    #[inline]
    fn serialize_char(self, v: char) -> Result<(), Fallback> {
        self.str(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), Fallback> {
        self.str(v);
        Ok(())
    }
    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Fallback> {
        self.tag(Tag::SeqStart);
        for &byte in v {
            self.bytes8(Tag::U64, u64::from(byte).to_le_bytes())?;
        }
        self.tag(Tag::SeqEnd);
        Ok(())
    }
    #[inline]
    fn serialize_none(self) -> Result<(), Fallback> {
        self.serialize_unit()
    }
    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Fallback> {
        value.serialize(self)
    }
    #[inline]
    fn serialize_unit(self) -> Result<(), Fallback> {
        self.tag(Tag::Null);
        Ok(())
    }
    #[inline]
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Fallback> {
        self.serialize_unit()
    }
    #[inline]
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<(), Fallback> {
        self.serialize_str(variant)
    }
    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<(), Fallback> {
        value.serialize(self)
    }
    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Fallback> {
        self.open_variant(variant);
        value.serialize(&mut *self)?;
        self.tag(Tag::MapEnd);
        Ok(())
    }
    #[inline]
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Fallback> {
        self.tag(Tag::SeqStart);
        Ok(Compound {
            recorder: self,
            in_variant: false,
        })
    }
    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, Fallback> {
        self.serialize_seq(Some(len))
    }
    #[inline]
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Self::SerializeTupleStruct, Fallback> {
        self.serialize_seq(Some(len))
    }
    #[inline]
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Fallback> {
        self.open_variant(variant);
        self.tag(Tag::SeqStart);
        Ok(Compound {
            recorder: self,
            in_variant: true,
        })
    }
    #[inline]
    fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Fallback> {
        self.tag(Tag::MapStart);
        Ok(Compound {
            recorder: self,
            in_variant: false,
        })
    }
    #[inline]
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Self::SerializeStruct, Fallback> {
        // serde_json's own types that write raw text (`RawValue`, and
        // `Number` with arbitrary precision) say so by their name.
        if name.starts_with("$serde_json::") {
            return Err(Fallback);
        }
        self.serialize_map(Some(len))
    }
    #[inline]
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Fallback> {
        self.open_variant(variant);
        self.tag(Tag::MapStart);
        Ok(Compound {
            recorder: self,
            in_variant: true,
        })
    }
}

/// The array forms: each item recorded in turn, then the array closed.
macro_rules! record_items {
    ($($form:ident :: $item:ident),*) => {$(
        impl ser::$form for Compound<'_, '_> {
            type Ok = ();
            type Error = Fallback;
            #[inline]
            fn $item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Fallback> {
                value.serialize(&mut *self.recorder)
            }
            #[inline]
            fn end(self) -> Result<(), Fallback> {
                self.close(Tag::SeqEnd)
            }
        }
    )*};
}

record_items!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Fallback;
    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Fallback> {
        key.serialize(KeyRecorder(&mut *self.recorder))
    }
    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Fallback> {
        value.serialize(&mut *self.recorder)
    }
    #[inline]
    fn end(self) -> Result<(), Fallback> {
        self.close(Tag::MapEnd)
    }
}

/// The object forms with named fields: each name, then its value.
macro_rules! record_fields {
    ($($form:ident),*) => {$(
        impl ser::$form for Compound<'_, '_> {
            type Ok = ();
            type Error = Fallback;
            #[inline]
            fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Fallback> {
                self.recorder.str(key);
                value.serialize(&mut *self.recorder)
            }
            #[inline]
            fn end(self) -> Result<(), Fallback> {
                self.close(Tag::MapEnd)
            }
        }
    )*};
}

record_fields!(SerializeStruct, SerializeStructVariant);

/// A map key: recorded as the string serde_json makes of it (strings,
/// characters, integers, unit variants, newtypes of those); any other key
/// falls back to serde_json, which writes or refuses it.
struct KeyRecorder<'r, 'a>(&'r mut Recorder<'a>);

impl KeyRecorder<'_, '_> {
    #[inline]
    fn decimal(self, v: impl Display) -> Result<(), Fallback> {
        self.0.str(&v.to_string());
        Ok(())
    }
}

/// Integer keys, written as their decimals (as serde_json does).
macro_rules! decimal_keys {
    ($($method:ident: $int:ty),*) => {$(
        #[inline]
        fn $method(self, v: $int) -> Result<(), Fallback> {
            self.decimal(v)
        }
    )*};
}

/// Keys left to serde_json (which writes some and refuses the others).
macro_rules! keys_for_serde_json {
    ($($method:ident($($arg:ty),*) -> $out:ty),*) => {$(
        #[inline]
        fn $method(self, $(_: $arg),*) -> Result<$out, Fallback> {
            Err(Fallback)
        }
    )*};
}

impl ser::Serializer for KeyRecorder<'_, '_> {
    type Ok = ();
    type Error = Fallback;
    type SerializeSeq = ser::Impossible<(), Fallback>;
    type SerializeTuple = ser::Impossible<(), Fallback>;
    type SerializeTupleStruct = ser::Impossible<(), Fallback>;
    type SerializeTupleVariant = ser::Impossible<(), Fallback>;
    type SerializeMap = ser::Impossible<(), Fallback>;
    type SerializeStruct = ser::Impossible<(), Fallback>;
    type SerializeStructVariant = ser::Impossible<(), Fallback>;

    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), Fallback> {
        self.0.str(v);
        Ok(())
    }
    #[inline]
    fn serialize_char(self, v: char) -> Result<(), Fallback> {
        self.0.str(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    decimal_keys!(
        serialize_i8: i8,
        serialize_i16: i16,
        serialize_i32: i32,
        serialize_i64: i64,
        serialize_u8: u8,
        serialize_u16: u16,
        serialize_u32: u32,
        serialize_u64: u64
    );
    #[inline]
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<(), Fallback> {
        self.serialize_str(variant)
    }
    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<(), Fallback> {
        value.serialize(self)
    }
    keys_for_serde_json!(
        serialize_bool(bool) -> (),
        serialize_f32(f32) -> (),
        serialize_f64(f64) -> (),
        serialize_bytes(&[u8]) -> (),
        serialize_none() -> (),
        serialize_unit() -> (),
        serialize_unit_struct(&'static str) -> (),
        serialize_seq(Option<usize>) -> Self::SerializeSeq,
        serialize_tuple(usize) -> Self::SerializeTuple,
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct,
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant,
        serialize_map(Option<usize>) -> Self::SerializeMap,
        serialize_struct(&'static str, usize) -> Self::SerializeStruct,
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant
    );
    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<(), Fallback> {
        Err(Fallback)
    }
    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), Fallback> {
        Err(Fallback)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;
    use serde_json::json;

    use super::*;

    /// The tape's text for `value`, or serde_json's (as the caller stores
    /// it) when the tape falls back.
    fn through_tape(value: &impl Serialize) -> (String, bool) {
        let mut tape = Vec::new();
        let fell_back = record(value, &mut tape).is_err();
        if fell_back {
            tape.clear();
            record_json(&serde_json::to_vec(value).unwrap(), &mut tape);
        }
        let mut out = Vec::new();
        write_json(&tape, &mut out);
        (String::from_utf8(out).unwrap(), fell_back)
    }

    fn same_as_serde_json(value: &impl Serialize) {
        let (text, _) = through_tape(value);
        assert_eq!(text, serde_json::to_string(value).unwrap());
    }

    #[derive(Serialize)]
    enum Shape {
        Unit,
        Newtype(f32),
        Tuple(i8, Option<u16>),
        Struct { name: &'static str, tags: Vec<char> },
    }

    #[derive(Serialize)]
    struct Unit;

    #[derive(Serialize)]
    struct Wrapped(u64);

    #[derive(Serialize)]
    struct Record<'a> {
        shapes: Vec<Shape>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        unit: Unit,
        wrapped: Wrapped,
        pair: (bool, ()),
        bytes: &'a [u8],
        by_number: BTreeMap<i32, &'a str>,
        by_variant: BTreeMap<&'a str, Shape>,
    }

    #[test]
    fn the_text_is_serde_jsons_for_every_kind_of_value() {
        same_as_serde_json(&json!({"i": 7, "loss": 0.25, "neg": -3, "big": u64::MAX, "min": i64::MIN}));
        same_as_serde_json(&json!({"s": "quote \" backslash \\ newline \n tab \t nul \u{0} é 😀", "": ""}));
        same_as_serde_json(&json!({"plain é 😀 \u{7f}": "unit \u{1f} separator", "k\"ey": "\u{7f}"}));
        same_as_serde_json(&json!({"nested": [[], {}, [1, [2, {"a": [null, true, false]}]]], "e": {}}));
        same_as_serde_json(&json!([1.0, 1e300, -0.0, 1.5e-7, 0.1, f64::MAX]));
        same_as_serde_json(&(
            f64::NAN,
            f64::INFINITY,
            f32::NEG_INFINITY,
            0.1f32,
            16777217f32,
            1e-45f32,
        ));
        same_as_serde_json(&Record {
            shapes: vec![
                Shape::Unit,
                Shape::Newtype(2.5),
                Shape::Tuple(-1, None),
                Shape::Struct {
                    name: "n",
                    tags: vec!['x', 'ÿ'],
                },
            ],
            skipped: None,
            unit: Unit,
            wrapped: Wrapped(9),
            pair: (true, ()),
            bytes: &[0, 1, 255],
            by_number: BTreeMap::from([(-5, "minus five"), (12, "twelve")]),
            by_variant: BTreeMap::from([("k", Shape::Tuple(3, Some(4)))]),
        });
        same_as_serde_json(&(i128::MAX, u128::MAX));
        same_as_serde_json(&BTreeMap::from([(true, 1), (false, 0)]));
    }

    #[test]
    fn data_deeper_than_the_stack_kept_in_place_reads_back_the_same() {
        let mut value = json!({"leaf": [1, {"x": 2}]});
        for depth in 0..40 {
            value = if depth % 2 == 0 {
                json!([value, depth])
            } else {
                json!({"d": value, "n": depth})
            };
        }
        same_as_serde_json(&value);
    }

    #[test]
    fn what_the_tape_does_not_record_as_serde_json_would_falls_back() {
        let raw = serde_json::value::RawValue::from_string(r#"{ "kept" :  [1, 2] }"#.into()).unwrap();
        let (text, fell_back) = through_tape(&BTreeMap::from([("raw", raw)]));
        assert!(fell_back);
        assert_eq!(text, r#"{"raw":{ "kept" :  [1, 2] }}"#);
        let tuple_key = BTreeMap::from([((1, 2), 3)]);
        assert!(
            record(&tuple_key, &mut Vec::new()).is_err(),
            "serde_json refuses it: so does the caller"
        );
        assert!(through_tape(&1u128).1);
        assert!(!through_tape(&json!({"a": 1})).1);
    }

    #[test]
    fn json_text_written_at_the_call_reads_back_the_same() {
        let value = json!({"i": 7, "loss": 0.25, "s": "é\n"});
        let mut tape = Vec::new();
        record_as_json(&value, &mut tape).unwrap();
        assert!(is_object(&tape));
        let mut out = Vec::new();
        write_json(&tape, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&value).unwrap());
    }

    #[test]
    fn only_an_object_is_an_object() {
        for (value, object) in [
            (json!({}), true),
            (json!({"a": 1}), true),
            (json!([]), false),
            (json!("{"), false),
            (json!(null), false),
        ] {
            let mut tape = Vec::new();
            record(&value, &mut tape).unwrap();
            assert_eq!(is_object(&tape), object, "{value}");
        }
        let mut tape = Vec::new();
        record_json(br#"{"raw":1}"#, &mut tape);
        assert!(is_object(&tape));
        tape.clear();
        record_json(b"[1]", &mut tape);
        assert!(!is_object(&tape));
    }
}
