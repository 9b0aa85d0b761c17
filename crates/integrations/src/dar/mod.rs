//! DAR address register (being written).
