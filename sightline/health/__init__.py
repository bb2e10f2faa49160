"""Is a dataset healthy? ``check`` finds what makes a model learn the wrong thing or an
evaluation lie: unreadable files, duplicates (and the same image under two labels), near
copies, test images that are copies of training images, class counts, odd sizes and modes."""

from sightline.health.check import check as check
from sightline.health.problems import KINDS as KINDS
from sightline.health.problems import HealthReport as HealthReport
from sightline.health.problems import Problem as Problem
