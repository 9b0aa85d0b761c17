//! The test kit's integration tests: its OS2mo and OS2Sync servers behave as the real ones do.

mod os2mo;
mod os2mo_common;
mod os2sync;
