"""End of speech: an energy gate with a hangover, frame by frame on 16 kHz samples.

Good enough for a quiet microphone and for synthetic questions; WebRTC-style VADs weigh spectra
as well. The thresholds follow the usual practice of speech-activity gates (20 ms frames, a level
well above silence, a few hundred ms of quiet to end a turn, as OpenAI Realtime's server VAD
`silence_duration_ms` defaults to 500 and its examples use 200-500).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATE = 16000
FRAME = 320                  # 20 ms at 16 kHz
SPEECH_DBFS = -40.0          # a frame louder than this is voiced (RMS re full scale)
MIN_SPEECH_MS = 100          # this much voiced audio starts a turn (clicks do not)
HANGOVER_MS = 300            # this much quiet after speech ends the turn
SPECULATE_MS = 100           # after this much quiet, start on the answer while waiting for the end


@dataclass
class VadState:
    started: bool = False       # speech has begun in this turn
    voiced_ms: int = 0
    quiet_ms: int = 0
    last_voice: int = 0         # sample index just after the last voiced frame


class EnergyVAD:
    def __init__(self, hangover_ms: int = HANGOVER_MS):
        self.hangover_ms = hangover_ms
        self.state = VadState()
        self._carry = np.zeros(0, np.float32)
        self._seen = 0               # samples consumed into frames

    def reset(self) -> None:
        self.state = VadState()
        self._carry = np.zeros(0, np.float32)
        self._seen = 0

    def feed(self, samples: np.ndarray) -> list[str]:
        """Events for these samples: 'speech_started', 'quiet' (SPECULATE_MS of quiet after speech),
        'speech_stopped' (the hangover has passed)."""
        buf = np.concatenate([self._carry, samples])
        n = len(buf) // FRAME * FRAME
        frames, self._carry = buf[:n].reshape(-1, FRAME), buf[n:]
        events, st = [], self.state
        for f in frames:
            self._seen += FRAME
            rms = float(np.sqrt(np.mean(f * f)) + 1e-9)
            if 20 * np.log10(rms) > SPEECH_DBFS:
                st.voiced_ms += 20
                st.quiet_ms = 0
                st.last_voice = self._seen
                if not st.started and st.voiced_ms >= MIN_SPEECH_MS:
                    st.started = True
                    events.append("speech_started")
            else:
                st.quiet_ms += 20
                if st.started and st.quiet_ms == SPECULATE_MS:
                    events.append("quiet")
                if st.started and st.quiet_ms == self.hangover_ms:
                    events.append("speech_stopped")
        return events
