//! Synthetic OPUS dump generator (being written).
