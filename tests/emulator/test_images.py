"""The returned image: real pixel sizes, derived from the last image, a small visible edit."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image, ImageChops, ImageFilter, ImageStat

from emulator import EmulatorConfig, start_emulator
from emulator.imaging import Target, derive_image
from shared.catalog import pixel_size, profile_for
from tests.emulator.helpers import (
    NB2,
    PRO,
    generate,
    image_bytes,
    image_part,
    jpeg,
    lineage,
    model_turn,
    request_body,
    size_of,
    unique,
    user,
)

SSIM_LIKE_MAX_MEAN_DIFF = 8.0  # mean absolute pixel change allowed between consecutive turns


@pytest.mark.parametrize(
    ("size", "expected"), [("1K", (1376, 768)), ("2K", (2752, 1536)), ("4K", (5504, 3072))]
)
def test_16_9_images_have_the_real_models_pixel_size(
    url: str, size: str, expected: tuple[int, int]
) -> None:
    response = generate(url, request_body([user(unique("room"))], "16:9", size))
    assert response.status_code == 200
    assert size_of(image_bytes(response.json())) == expected


def test_no_image_config_gives_a_square_1k_image(url: str) -> None:
    response = generate(url, request_body([user(unique("room"))]))
    assert size_of(image_bytes(response.json())) == (1024, 1024)


def test_an_omitted_aspect_ratio_follows_the_input_image(url: str) -> None:
    response = generate(url, request_body([user(unique("edit"), jpeg(1600, 900))], size="1K"))
    assert size_of(image_bytes(response.json())) == pixel_size("16:9", "1K")


def test_a_first_image_has_generation_one_and_no_parent(url: str) -> None:
    reply = generate(url, request_body([user(unique("room"))], "4:3", "1K")).json()
    data = image_bytes(reply)
    assert data.startswith(b"\xff\xd8\xff")
    assert image_part(reply)["inlineData"]["mimeType"] == "image/jpeg"
    assert lineage(data) == (1, "none")


def test_a_user_reference_photo_is_the_parent_of_generation_one(url: str) -> None:
    photo = jpeg(800, 600)
    reply = generate(url, request_body([user(unique("edit"), photo)], "4:3", "1K")).json()
    assert lineage(image_bytes(reply)) == (1, hashlib.sha256(photo).hexdigest())


def test_each_turn_derives_from_the_previous_turns_image(url: str) -> None:
    contents = [user(unique("a sofa room"))]
    previous: bytes | None = None
    for turn in range(1, 4):
        reply = generate(url, request_body(contents, "16:9", "1K")).json()
        data = image_bytes(reply)
        expected_parent = hashlib.sha256(previous).hexdigest() if previous else "none"
        assert lineage(data) == (turn, expected_parent)
        contents += [model_turn(reply), user(unique(f"change {turn}"))]
        previous = data


def test_a_later_user_reference_image_wins_over_older_model_images(url: str) -> None:
    first = generate(url, request_body([user(unique("room"))], "1:1", "1K")).json()
    photo = jpeg(1024, 1024, (30, 60, 90))
    contents = [user("room"), model_turn(first), user(unique("use this"), photo)]
    reply = generate(url, request_body(contents, "1:1", "1K")).json()
    assert lineage(image_bytes(reply)) == (1, hashlib.sha256(photo).hexdigest())


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def _mean(image: Image.Image, box: tuple[int, int, int, int]) -> list[float]:
    return ImageStat.Stat(image.crop(box)).mean


def test_a_hex_colour_in_the_prompt_paints_the_walls_and_nothing_else() -> None:
    target = Target(profile_for(NB2), "16:9", "1K")
    base = derive_image(None, "a room", target)
    painted = derive_image(base.data, "paint the walls #20C040", target)
    wall, window, sofa = (100, 20, 500, 200), (850, 120, 1150, 350), (250, 450, 650, 550)
    before, after = _open(base.data), _open(painted.data)
    colour = (0x20, 0xC0, 0x40)
    assert all(abs(a - c) < 4 for a, c in zip(_mean(after, wall), colour, strict=True))
    for untouched in (window, sofa):
        moved = [
            abs(a - b)
            for a, b in zip(_mean(after, untouched), _mean(before, untouched), strict=True)
        ]
        assert max(moved) < 3


@pytest.mark.parametrize(
    ("fault", "check"),
    [
        ("frame_zoom", "moved"),
        ("frame_pan", "moved"),
        ("colour_cast", "bluer_drops"),
        ("blur", "softer"),
        ("edit_spill", "floor_painted"),
        ("colour_off", "wall_off"),
    ],
)
def test_image_faults_build_their_flaw_into_an_otherwise_normal_edit(
    fault: str, check: str
) -> None:
    target = Target(profile_for(NB2), "16:9", "1K")
    base = derive_image(None, "a room", target)
    prompt = "paint the walls #20C040"
    clean = _open(derive_image(base.data, prompt, target).data)
    flawed = _open(derive_image(base.data, prompt, target, fault).data)
    floor_patch = (1050, 570, 1300, 700)
    if check == "moved":  # the sofa's left edge is somewhere else
        assert ImageChops.difference(clean, flawed).getbbox() is not None
        assert (
            abs(_mean(flawed, (150, 450, 200, 550))[0] - _mean(clean, (150, 450, 200, 550))[0]) > 5
        )
    elif check == "bluer_drops":
        assert _mean(clean, (0, 0, 1376, 700))[2] - _mean(flawed, (0, 0, 1376, 700))[2] > 10
    elif check == "softer":
        edges = [
            ImageStat.Stat(i.convert("L").filter(ImageFilter.FIND_EDGES)).var[0]
            for i in (clean, flawed)
        ]
        assert edges[1] < 0.5 * edges[0]
    elif check == "floor_painted":
        assert (
            max(
                abs(a - b)
                for a, b in zip(_mean(flawed, floor_patch), (0x20, 0xC0, 0x40), strict=True)
            )
            < 4
        )
    else:
        off = [
            abs(a - c)
            for a, c in zip(_mean(flawed, (100, 20, 500, 200)), (0x20, 0xC0, 0x40), strict=True)
        ]
        assert 6 < max(off) < 20


def test_evening_words_darken_and_warm_the_scene() -> None:
    target = Target(profile_for(NB2), "16:9", "1K")
    base = derive_image(None, "a room", target)
    evening = derive_image(base.data, "make it evening", target)
    box = (0, 0, 1376, 700)
    before, after = _mean(_open(base.data), box), _mean(_open(evening.data), box)
    assert sum(after) < sum(before)
    assert before[2] - after[2] > before[0] - after[0]  # blue drops more than red


def test_consecutive_images_stay_similar_but_not_identical() -> None:
    target = Target(profile_for(NB2), "16:9", "1K")
    first = derive_image(None, "a room", target)
    second = derive_image(first.data, "add a plant", target)
    diff = ImageChops.difference(_open(first.data), _open(second.data))
    mean_diff = sum(ImageStat.Stat(diff).mean) / 3
    assert 0 < mean_diff < SSIM_LIKE_MAX_MEAN_DIFF


def test_png_output_carries_the_lineage_too() -> None:
    target = Target(profile_for(NB2), "1:1", "512", fmt="png")
    first = derive_image(None, "room", target)
    second = derive_image(first.data, "plant", target)
    assert second.data.startswith(b"\x89PNG") and second.mime_type == "image/png"
    assert lineage(second.data) == (2, hashlib.sha256(first.data).hexdigest())


def test_the_mime_lie_declares_png_while_the_bytes_are_jpeg() -> None:
    with start_emulator(EmulatorConfig(mime_lie_rate=1.0)) as emulator:
        reply = generate(emulator.url, request_body([user("room")], "1:1", "1K")).json()
    assert image_part(reply)["inlineData"]["mimeType"] == "image/png"
    assert image_bytes(reply).startswith(b"\xff\xd8\xff")


def test_include_thoughts_puts_an_unsigned_thought_part_first(url: str) -> None:
    body = request_body([user(unique("room"))], thinkingConfig={"includeThoughts": True})
    parts = model_turn(generate(url, body).json())["parts"]
    assert parts[0]["thought"] is True and "thoughtSignature" not in parts[0]
    assert all("thoughtSignature" in p for p in parts[1:])
    assert len(parts) == 3


def test_image_only_modality_returns_just_a_signed_image(url: str) -> None:
    body = {
        "contents": [user(unique("room"))],
        "generationConfig": {"responseModalities": ["IMAGE"]},
    }
    parts = model_turn(generate(url, body).json())["parts"]
    assert len(parts) == 1
    assert "inlineData" in parts[0] and "thoughtSignature" in parts[0]


@pytest.mark.parametrize(
    ("model", "size", "tokens"),
    [(NB2, "512", 747), (NB2, "2K", 1680), (NB2, "4K", 2520), (PRO, "2K", 1120), (PRO, "4K", 2000)],
)
def test_usage_reports_the_catalog_image_tokens_for_the_size(
    url: str, model: str, size: str, tokens: int
) -> None:
    body = request_body([user(unique("room"), jpeg(64, 64))], "1:1", size)
    usage = generate(url, body, model=model).json()["usageMetadata"]
    assert usage["candidatesTokensDetails"] == [{"modality": "IMAGE", "tokenCount": tokens}]
    assert usage["candidatesTokenCount"] >= tokens
    prompt_parts = [
        usage["promptTokenCount"],
        usage["candidatesTokenCount"],
        usage["thoughtsTokenCount"],
    ]
    assert usage["totalTokenCount"] == sum(prompt_parts)
    assert {d["modality"] for d in usage["promptTokensDetails"]} == {"TEXT", "IMAGE"}
