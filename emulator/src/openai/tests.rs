//! OpenAI surface tests over real HTTP.
