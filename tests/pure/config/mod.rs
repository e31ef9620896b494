//! Business profile loading: the demo fixtures load, and every broken profile is rejected with
//! the exact `file:line:column: field.path` of the mistake.

mod errors;
mod fixtures;
mod never_panics;
