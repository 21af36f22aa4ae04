//! Workstation checks.
