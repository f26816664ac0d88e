//! One thing wrong with the params, as validation (`validate`) and the lax
//! reading of scalars (`lax`) both report it.

use serde::Serialize;

/// One thing wrong with the params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    /// Dotted path of the field (`optimizer.lr`, `layers[2].size`); empty for
    /// the params object itself.
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}
