//! Replaying into a stream: records from the archive ([`reinject`]) and new records from
//! lines of input ([`put`]), both through one PutRecords sender ([`sender`]).

pub mod estimate;
pub mod function;
pub mod journal;
pub mod put;
pub mod reinject;
pub mod runner;
pub mod sender;
pub mod verify;
