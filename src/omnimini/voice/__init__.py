"""The voice loop (issue 9): audio in over a WebSocket, end of speech, a spoken answer streamed out
clause by clause while the model is still writing. Layer 4: uses the service layer only."""
