//! Tests of the wire types: the JSON the server speaks, round trips, and hostile commands.

mod command;
mod wire;
