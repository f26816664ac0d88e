//! Taking a `serde_json::Value` out of a generic log argument without
//! copying it: `ctx.log("tick", json!({...}), None)` passes a `Value` as an
//! `impl Serialize`, and the log queue keeps that value as it is (moved, no
//! serialisation on the caller's thread) when the argument is one.

use std::any::TypeId;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;

use serde_json::Value;

/// Names the type behind a marker; callable only on a `'static` one, which
/// is why [`type_of`] reaches it through a trait object.
trait Named {
    fn type_id(&self) -> TypeId
    where
        Self: 'static;
}

impl<T: ?Sized> Named for PhantomData<T> {
    fn type_id(&self) -> TypeId
    where
        Self: 'static,
    {
        TypeId::of::<T>()
    }
}

/// The `TypeId` of `T`, lifetimes ignored (as `TypeId` ignores them).
fn type_of<T: ?Sized>() -> TypeId {
    let marker = PhantomData::<T>;
    let named: &dyn Named = &marker;
    // SAFETY: only the lifetime bound of the trait object changes, and the
    // one method called through it reads no data of `T`: it names `T`'s type,
    // which does not depend on lifetimes. Nothing outlives this call.
    let named: &(dyn Named + 'static) = unsafe { std::mem::transmute::<&dyn Named, &(dyn Named + 'static)>(named) };
    named.type_id()
}

/// `data` itself when it is a `Value`, otherwise `data` back.
pub fn into_value<T>(data: T) -> Result<Value, T> {
    if type_of::<T>() != TypeId::of::<Value>() {
        return Err(data);
    }
    let data = ManuallyDrop::new(data);
    // SAFETY: `T` is `Value` (the same type id, and `Value` has no lifetime
    // parameter that could differ), so this reads a valid `Value`; `data` is
    // never dropped, so the value has exactly one owner afterwards.
    Ok(unsafe { std::ptr::read((&*data as *const T).cast::<Value>()) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_value_is_moved_and_anything_else_given_back() {
        assert_eq!(into_value(json!({"a": [1, "x"]})).unwrap(), json!({"a": [1, "x"]}));
        let borrowed = json!({"b": 2});
        assert!(into_value(&borrowed).is_err(), "a reference is not a value");
        assert_eq!(into_value(3u8).unwrap_err(), 3);
        let text = String::from("kept");
        assert_eq!(into_value(text.as_str()).unwrap_err(), "kept");
    }
}
