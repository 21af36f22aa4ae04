//! The fleet inventory: typed, documented, and checked while it is read.
