"""Audio bytes in and out: decode any upload to 16 kHz mono float, encode 16-bit PCM as it is made.

Decoding and the compressed encoders (mp3, flac, opus, aac) are ffmpeg's, through PyAV, which
faster-whisper brings with its own ffmpeg build; wav and pcm are written by hand so that they can
stream from the first sample.
"""

from __future__ import annotations

import io
import struct

import av
import numpy as np

WHISPER_RATE = 16000          # Whisper's input rate
# OpenAI's speech output is 24 kHz, 16-bit, mono ("pcm: raw samples in 24kHz (16-bit signed,
# low-endian), without the header", platform.openai.com/docs/guides/text-to-speech).
OUTPUT_RATE = 24000
MAX_AUDIO_SECONDS = 30 * 60   # longer uploads are refused rather than decoded into memory

# response_format -> (ffmpeg muxer, ffmpeg encoder, Content-Type). Opus goes in Ogg, as OpenAI's does.
COMPRESSED = {
    "mp3": ("mp3", "libmp3lame", "audio/mpeg"),
    "flac": ("flac", "flac", "audio/flac"),
    "opus": ("ogg", "libopus", "audio/ogg"),
    "aac": ("adts", "aac", "audio/aac"),
}
CONTENT_TYPES = {"wav": "audio/wav", "pcm": "audio/pcm", **{k: v[2] for k, v in COMPRESSED.items()}}
FORMATS = tuple(CONTENT_TYPES)


class BadAudio(ValueError):
    """The bytes are not audio that ffmpeg can decode (or hold no samples)."""


def decode(data: bytes, rate: int = WHISPER_RATE) -> np.ndarray:
    """Any container/codec ffmpeg knows -> mono float32 at `rate`. Raises BadAudio."""
    if not data:
        raise BadAudio("the audio file is empty")
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise BadAudio("the file has no audio stream")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
            chunks, total = [], 0
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    arr = out.to_ndarray().reshape(-1)
                    chunks.append(arr)
                    total += arr.size
                    if total > MAX_AUDIO_SECONDS * rate:
                        raise BadAudio(f"the audio is longer than {MAX_AUDIO_SECONDS // 60} minutes")
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except BadAudio:
        raise
    except (av.error.FFmpegError, ValueError, IndexError) as e:
        raise BadAudio(f"the file could not be decoded as audio ({e.__class__.__name__})") from e
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    if samples.size == 0:
        raise BadAudio("the audio file holds no samples")
    return samples.astype(np.float32) / 32768.0


def wav_header(rate: int, data_bytes: int = 0xFFFFFFFF - 36) -> bytes:
    """A RIFF/WAVE header for 16-bit mono. Streamed wav does not know its length yet: the sizes are
    then the maximum, which ffmpeg, browsers and Python's `wave` read as 'until the end'."""
    riff = min(36 + data_bytes, 0xFFFFFFFF)
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", data_bytes))


def wav_bytes(pcm: np.ndarray, rate: int) -> bytes:
    data = pcm.astype("<i2").tobytes()
    return wav_header(rate, len(data)) + data


class _Sink(io.RawIOBase):
    """A write-only file for the muxer: what it writes is drained after each encode."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.buf += b
        return len(b)

    def drain(self) -> bytes:
        out, self.buf = bytes(self.buf), bytearray()
        return out


class Encoder:
    """16-bit mono PCM at `in_rate` -> `fmt` bytes at OUTPUT_RATE, chunk by chunk.
    feed() returns what can be sent now; close() the rest."""

    def __init__(self, fmt: str, in_rate: int, out_rate: int = OUTPUT_RATE):
        if fmt not in CONTENT_TYPES:
            raise ValueError(fmt)
        self.fmt, self.in_rate, self.out_rate = fmt, in_rate, out_rate
        self.content_type = CONTENT_TYPES[fmt]
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=out_rate)
        self._pts = 0
        self._started = False
        if fmt in COMPRESSED:
            muxer, codec, _ = COMPRESSED[fmt]
            self._sink = _Sink()
            self._container = av.open(self._sink, mode="w", format=muxer)
            self._stream = self._container.add_stream(codec, rate=48000 if codec == "libopus" else out_rate)
            self._stream.layout = "mono"
            if codec == "libopus":    # opus runs at 48 kHz only
                self._resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)

    def _resample(self, pcm: np.ndarray | None) -> list[av.AudioFrame]:
        if pcm is None:
            return self._resampler.resample(None)
        frame = av.AudioFrame.from_ndarray(pcm.astype(np.int16).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.in_rate
        frame.pts = self._pts
        self._pts += pcm.size
        return self._resampler.resample(frame)

    def feed(self, pcm: np.ndarray | None) -> bytes:
        frames = self._resample(pcm)
        if self.fmt in ("wav", "pcm"):
            body = b"".join(f.to_ndarray().astype("<i2").tobytes() for f in frames)
            if self.fmt == "wav" and not self._started:
                self._started = True
                return wav_header(self.out_rate) + body
            return body
        for f in frames:
            f.pts = None
            for packet in self._stream.encode(f):
                self._container.mux(packet)
        return self._sink.drain()

    def close(self) -> bytes:
        tail = self.feed(None)
        if self.fmt in COMPRESSED:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            tail += self._sink.drain()
        elif self.fmt == "wav" and not self._started:
            tail = wav_header(self.out_rate, len(tail)) + tail
        return tail
