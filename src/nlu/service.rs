//! placeholder: filled by the nlu work
