//! Nix syntax builder.
