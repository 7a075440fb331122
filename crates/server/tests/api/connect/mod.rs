mod introspect;
mod token;
mod token_errors;
