"""The "Digits & clothing" tab: samples of the conditional GANs."""

from __future__ import annotations

import random

import gradio as gr

from stargan_app.errors import StarGANAppError
from stargan_app.ui.api import class_grid_image, sample_images
from stargan_app.ui.shared import CGAN_JOBS, friendly, sampler

PRIVATE = {"api_visibility": "private"}  # the named /sample and /sample_grid endpoints are in ui/api.py


def build_digits_tab() -> None:
    with gr.Row():
        with gr.Column(scale=1):
            dataset = gr.Radio(
                [("MNIST digits", "mnist"), ("Fashion-MNIST clothing", "fashion")], value="mnist", label="Dataset"
            )
            label = gr.Dropdown([str(i) for i in range(10)], value="0", label="Class")
            n = gr.Slider(1, 64, value=16, step=1, label="Samples")
            with gr.Row():
                seed = gr.Number(value=0, precision=0, label="Seed")
                dice = gr.Button("Random seed")
            sample_btn = gr.Button("Sample", variant="primary")
            all_btn = gr.Button("All classes")
        with gr.Column(scale=2):
            samples = gr.Gallery(label="Samples", columns=8, height="auto")
            class_grid = gr.Image(type="pil", label="All classes", format="png")

    def on_dataset(value):
        try:
            names = sampler(value).classes
        except StarGANAppError as e:
            gr.Warning(str(e))
            names = []
        return gr.update(choices=names, value=names[0] if names else None)

    dataset.change(on_dataset, [dataset], [label], **PRIVATE)
    dice.click(lambda: random.randint(0, 2**31 - 1), None, [seed], **PRIVATE)
    sample_btn.click(friendly(sample_images), [dataset, label, n, seed], [samples], **PRIVATE, **CGAN_JOBS)
    all_btn.click(friendly(class_grid_image), [dataset, seed], [class_grid], **PRIVATE, **CGAN_JOBS)
