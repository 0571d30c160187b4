//! Conversion of Aurora job JSON.
