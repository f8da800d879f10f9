//! Names of streams and tables, and the ARNs they come from.
//!
//! Names typed by a person or read from an event are validated before any AWS call, so a
//! typo gets an answer that says what is allowed instead of a service error (or, worse, a
//! request against another resource).

use std::fmt;

/// Why a name or ARN was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A stream name outside Kinesis's rules.
    #[error(
        "invalid stream name {0:?}: a Kinesis stream name is 1 to 128 characters of \
         letters, digits, '_', '.' and '-' (pattern [a-zA-Z0-9_.-]+)"
    )]
    Stream(String),
    /// A table name outside DynamoDB's rules.
    #[error(
        "invalid table name {0:?}: a DynamoDB table name is 3 to 255 characters of \
         letters, digits, '_', '.' and '-' (pattern [a-zA-Z0-9_.-]+)"
    )]
    Table(String),
    /// An ARN that does not name a Kinesis stream or stream consumer.
    #[error(
        "invalid Kinesis stream ARN {0:?}: expected arn:PARTITION:kinesis:REGION:ACCOUNT:stream/NAME \
         or a consumer ARN .../stream/NAME/consumer/CONSUMER:TIMESTAMP"
    )]
    StreamArn(String),
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn shown(value: &str) -> String {
    value.chars().take(300).collect()
}

/// A Kinesis stream name (`[a-zA-Z0-9_.-]{1,128}`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamName(String);

impl StreamName {
    /// Validates a stream name.
    pub fn new(name: &str) -> Result<Self, NameError> {
        if (1..=128).contains(&name.len()) && name.chars().all(is_name_char) {
            Ok(Self(name.to_owned()))
        } else {
            Err(NameError::Stream(shown(name)))
        }
    }

    /// The name as Kinesis knows it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for StreamName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamName({})", self.0)
    }
}

/// A DynamoDB table name (`[a-zA-Z0-9_.-]{3,255}`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName(String);

impl TableName {
    /// Validates a table name.
    pub fn new(name: &str) -> Result<Self, NameError> {
        if (3..=255).contains(&name.len()) && name.chars().all(is_name_char) {
            Ok(Self(name.to_owned()))
        } else {
            Err(NameError::Table(shown(name)))
        }
    }

    /// The name as DynamoDB knows it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for TableName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TableName({})", self.0)
    }
}

/// How Kinesis calls name a stream: by name, in the account and region of the client's
/// credentials, or by ARN. A stream of another account is found by its ARN only when the
/// caller's own credentials may use it (a resource policy); with a role of that account its
/// name works too, and the ARN says exactly which stream is meant either way, so an ARN
/// given is what calls send.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamAddress {
    /// The stream's name.
    pub name: StreamName,
    /// Its ARN, when one was given.
    pub arn: Option<String>,
}

impl StreamAddress {
    /// The `StreamName` parameter of a call: the name when no ARN was given.
    pub fn name_param(&self) -> Option<String> {
        self.arn.is_none().then(|| self.name.as_str().to_owned())
    }

    /// The `StreamARN` parameter of a call.
    pub fn arn_param(&self) -> Option<String> {
        self.arn.clone()
    }
}

impl From<StreamName> for StreamAddress {
    fn from(name: StreamName) -> Self {
        Self { name, arn: None }
    }
}

impl From<StreamRef> for StreamAddress {
    fn from(stream: StreamRef) -> Self {
        Self {
            name: stream.name,
            arn: Some(stream.arn),
        }
    }
}

impl fmt::Display for StreamAddress {
    /// The ARN when given (it names the account and region), else the name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.arn {
            Some(arn) => f.write_str(arn),
            None => f.write_str(self.name.as_str()),
        }
    }
}

/// The stream an event source ARN points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamRef {
    /// The stream's name.
    pub name: StreamName,
    /// The stream's own ARN (a consumer ARN is cut back to its stream).
    pub arn: String,
    /// The region in the ARN.
    pub region: String,
}

impl StreamRef {
    /// Parses a stream ARN (`arn:aws:kinesis:us-east-1:123456789012:stream/NAME`) or an
    /// enhanced fan-out consumer ARN (`.../stream/NAME/consumer/C:1234`); events from a
    /// consumer carry the consumer ARN as their `eventSourceARN`.
    pub fn from_arn(arn: &str) -> Result<Self, NameError> {
        let bad = || NameError::StreamArn(shown(arn));
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [scheme, partition, service, region, account, resource] = parts[..] else {
            return Err(bad());
        };
        if scheme != "arn" || service != "kinesis" || partition.is_empty() || region.is_empty() {
            return Err(bad());
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let rest = resource.strip_prefix("stream/").ok_or_else(bad)?;
        let name = match rest.split_once('/') {
            None => rest,
            Some((name, consumer)) if consumer.starts_with("consumer/") => name,
            Some(_) => return Err(bad()),
        };
        let name = StreamName::new(name).map_err(|_| bad())?;
        Ok(Self {
            arn: format!("arn:{partition}:kinesis:{region}:{account}:stream/{name}"),
            region: region.to_owned(),
            name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_address_sends_the_arn_when_given_and_the_name_otherwise() {
        let by_name = StreamAddress::from(StreamName::new("orders").unwrap());
        assert_eq!(
            (by_name.name_param().as_deref(), by_name.arn_param()),
            (Some("orders"), None)
        );
        assert_eq!(by_name.to_string(), "orders");
        let arn = "arn:aws:kinesis:eu-west-1:210987654321:stream/orders";
        let by_arn = StreamAddress::from(StreamRef::from_arn(arn).unwrap());
        assert_eq!(
            (by_arn.name_param(), by_arn.arn_param().as_deref()),
            (None, Some(arn))
        );
        assert_eq!(by_arn.to_string(), arn);
    }

    #[test]
    fn stream_names_follow_kinesis_rules() {
        assert!(StreamName::new("orders").is_ok());
        assert!(StreamName::new("a.b_c-9").is_ok());
        assert!(StreamName::new(&"x".repeat(128)).is_ok());
        for bad in ["", "with space", "slash/name", "ünï", &"x".repeat(129)] {
            let err = StreamName::new(bad).unwrap_err().to_string();
            assert!(err.contains("[a-zA-Z0-9_.-]+"), "{err}");
        }
    }

    #[test]
    fn table_names_follow_dynamodb_rules() {
        assert!(TableName::new("orders-archive-ALL").is_ok());
        assert!(
            TableName::new("ab").is_err(),
            "AWS needs at least 3 characters"
        );
        assert!(TableName::new(&"t".repeat(256)).is_err());
    }

    #[test]
    fn stream_arn_and_consumer_arn() {
        let s =
            StreamRef::from_arn("arn:aws:kinesis:eu-west-1:123456789012:stream/orders").unwrap();
        assert_eq!(s.name.as_str(), "orders");
        assert_eq!(s.region, "eu-west-1");
        let c = StreamRef::from_arn(
            "arn:aws:kinesis:eu-west-1:123456789012:stream/orders/consumer/archiver:1700000000",
        )
        .unwrap();
        assert_eq!(c, s);
        assert_eq!(
            c.arn,
            "arn:aws:kinesis:eu-west-1:123456789012:stream/orders"
        );
    }

    #[test]
    fn other_arns_are_refused() {
        for bad in [
            "",
            "orders",
            "arn:aws:dynamodb:eu-west-1:123456789012:table/orders",
            "arn:aws:kinesis:eu-west-1:123456789012:orders",
            "arn:aws:kinesis:eu-west-1:12345:stream/orders",
            "arn:aws:kinesis:eu-west-1:123456789012:stream/",
            "arn:aws:kinesis:eu-west-1:123456789012:stream/a/b",
        ] {
            assert!(StreamRef::from_arn(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn arn_parser_never_panics(s in "\\PC{0,80}") {
            let _ = StreamRef::from_arn(&s);
        }
    }
}
