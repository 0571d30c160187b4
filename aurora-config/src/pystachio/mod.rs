//! The Pystachio template engine: typed values, scopes, mustache references and type checks.
