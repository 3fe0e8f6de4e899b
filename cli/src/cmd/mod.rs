//! One module per subcommand; each returns its output or an error, and
//! `main` does the printing.

pub(crate) mod check;
pub(crate) mod demo;
pub(crate) mod expand;
pub(crate) mod explain;
pub(crate) mod policy;
pub(crate) mod slots;
