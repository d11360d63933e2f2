"""The course as data: every question of the three practicals, in the course's order.

A row: the question's id (`1ab.Q16`, `1cd.Q21`, `1e.E3`, with a readable alias for the
1-e ones, which the course leaves unnumbered: `1e.multihead`), its part, a short title,
what it asks, the kind of answer it wants, what in tinyvision answers it (a study, a
preset, a sweep of one key, or a command), and the values the course's reports give,
each with the setup it was measured in. Every question is also a section of its
practical's notebook, headed `<id> — <title>` (`Question.section`).

To add a question, add a row; `tinyvision course` lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass

# The kinds of answer a question asks for.
KINDS = ("derivation", "number", "figure", "table", "comparison", "code", "text")
PRACTICALS = {"1ab": "1-ab", "1cd": "1-cd", "1e": "1-e"}
NOTEBOOKS = {"1-ab": "1ab-mlp", "1-cd": "1cd-cnn", "1-e": "1e-vit"}


@dataclass(frozen=True)
class Answer:
    """What answers a question: a study, a preset, a sweep of one key over a preset, or a
    command (its text as typed; RUN_FOLDER stands for a run the user names)."""

    kind: str  # "study", "preset", "sweep", "command"
    name: str  # the study, the preset, or the command line
    # sweep: the key swept, with its values (`optim.lr=0.001,0.03,0.1`); study: the steps
    # that answer the question, when not all do (`baseline,standardize`)
    key: str = ""
    live: str = ""  # command: what can be computed from it at once ("params", ...)

    @property
    def command(self) -> str:
        if self.kind == "study":
            return f"tinyvision study {self.name}"
        if self.kind == "preset":
            return f"tinyvision run {self.name}"
        if self.kind == "sweep":
            return f"tinyvision sweep {self.name} {self.key}"
        return self.name

    @property
    def steps(self) -> list[str]:
        """A study's steps that answer the question; [] for all of them."""
        return self.key.split(",") if self.kind == "study" and self.key else []

    @property
    def swept(self) -> str:
        """The key a sweep varies (`optim.lr`), without its values."""
        return self.key.split("=")[0]


@dataclass(frozen=True)
class Reference:
    """A value the course's reports give, and the setup it was measured in.

    `data`, `epochs` and `model` say the setup in tinyvision's names where the reports
    give it (None where they do not), so that a run on other data, another budget or
    another model is flagged beside it. `preset` is the preset (or `study/step`) that
    runs the course's setup, where there is one: the report's overview shows the value
    beside that preset's result.
    """

    value: str
    setup: str
    data: str | None = None
    epochs: int | None = None
    model: str | None = None
    preset: str | None = None

    def __str__(self) -> str:
        return f"{self.value} ({self.setup})"


@dataclass(frozen=True)
class Question:
    id: str  # `1cd.Q16`
    part: str
    title: str  # short: the notebook heading is `<id> — <title>`
    asks: str  # the question, in tinyvision's words
    kinds: tuple[str, ...]
    answers: tuple[Answer, ...] = ()
    references: tuple[Reference, ...] = ()
    alias: str = ""  # `1e.multihead`

    @property
    def practical(self) -> str:
        return PRACTICALS[self.id.split(".")[0]]

    @property
    def notebook(self) -> str:
        return NOTEBOOKS[self.practical]

    @property
    def section(self) -> str:
        """The heading of the notebook section that walks through this question."""
        return f"{self.id} — {self.title}"


# Short constructors, so that a row reads as the course does.
def study(name: str, steps: str = "") -> Answer:
    return Answer("study", name, steps)


def preset(name: str) -> Answer:
    return Answer("preset", name)


def sweep(name: str, key: str) -> Answer:
    return Answer("sweep", name, key)


def command(line: str, live: str = "") -> Answer:
    return Answer("command", line, live=live)


R = Reference
SUMMARY_CNN = "tinyvision summary cnn"
FCCONV = "tinyvision fcconv RUN_FOLDER"
ATTENTION = "tinyvision attention RUN_FOLDER"
CIFAR = "cifar10"
CIFAR_STACK = "CIFAR-10, the course CNN, each row adding to the one before"
VIT_BASE = "timm:vit_base_patch16_224"

# fmt: off
QUESTIONS = (
    # --- 1-ab: neural networks from scratch, and SVMs ----------------------------------
    Question("1ab.Q1", "1-a theory: the dataset", "Train, validation and test splits",
             "What is each of the three subsets for, and why is the test set kept apart?",
             ("text",)),
    Question("1ab.Q2", "1-a theory: the dataset", "How many examples",
             "How does the number of training examples change what a network learns, and "
             "what an epoch costs?", ("text",)),
    Question("1ab.Q3", "1-a theory: the architecture", "Why a non-linearity",
             "Why put an activation between two linear layers?", ("text",)),
    Question("1ab.Q4", "1-a theory: the architecture", "The sizes n_x, n_h, n_y",
             "The input, hidden and output sizes of the course's network; which ones the data "
             "fixes and which one is chosen.", ("number", "text"),
             references=(R("n_x = 2, n_h = 4, n_y = 2", "the sheet's figure: 2-D points, two "
                           "classes"),)),
    Question("1ab.Q5", "1-a theory: the architecture", "The target y and the output ŷ",
             "What the one-hot target and the predicted vector each hold, and how they "
             "differ.", ("text",)),
    Question("1ab.Q6", "1-a theory: the architecture", "Why a softmax output",
             "Why the last activation is a softmax.", ("text",)),
    Question("1ab.Q7", "1-a theory: the architecture", "The forward pass",
             "The equations from the input x through h̃, h and ỹ to ŷ.",
             ("derivation", "code")),
    Question("1ab.Q8", "1-a theory: the loss", "Which way ŷ must move",
             "To lower the cross-entropy, and the squared error, in which direction must each "
             "output move?", ("text",)),
    Question("1ab.Q9", "1-a theory: the loss", "Cross-entropy or squared error",
             "Which loss suits classification and which regression, and why?", ("text",)),
    Question("1ab.Q10", "1-a theory: optimization", "Full batch, mini-batch, online",
             "What each way of averaging the gradient costs and gains; which to use by "
             "default.", ("text", "comparison"),
             (sweep("1ab-circles-manual", "train.batch_size=1,10,200"),),
             (R("one batch of all points: close to the default; one point a batch: large "
                "oscillations", "circles, manual SGD, lr 0.03", data="circles"),)),
    Question("1ab.Q11", "1-a theory: optimization", "The learning rate",
             "What a learning rate too small or too large does to training.",
             ("text", "figure"), (sweep("1ab-circles-manual", "optim.lr=0.0001,0.03,0.1,1"),),
             (R("94% test, loss 0.18", "circles, manual backprop, lr 0.1", data="circles"),
              R("64% (loss 0.69) / 65% (loss 1.88)", "the same at lr 0.0001 / lr 1",
                data="circles"))),
    Question("1ab.Q12", "1-a theory: optimization", "The cost of gradients with depth",
             "How the cost of every parameter's gradient grows with the number of layers, "
             "computed naively and by backpropagation.", ("text",),
             references=(R("O(L²) naively against O(L) by backpropagation",
                           "L layers, each recomputing the chain above it; the reports give "
                           "other naive counts too"),)),
    Question("1ab.Q13", "1-a theory: optimization", "What backpropagation needs",
             "What must hold of the layers and the loss for this training to work?",
             ("text",)),
    Question("1ab.Q14", "1-a theory: the gradients", "Cross-entropy on a softmax",
             "Show that the cross-entropy of a softmax output simplifies to "
             "-Σ y_i ỹ_i + log Σ exp(ỹ_i).", ("derivation",)),
    Question("1ab.Q15", "1-a theory: the gradients", "The gradient at the output",
             "The gradient of the loss with respect to ỹ.", ("derivation",),
             references=(R("ŷ - y", "one-hot y; an N x n_y matrix for a batch"),)),
    Question("1ab.Q16", "1-a theory: the gradients", "The output layer's gradients",
             "The gradients of W_y and b_y, from the gradient at ỹ.", ("derivation",)),
    Question("1ab.Q17", "1-a theory: the gradients", "The hidden layer's gradients",
             "The gradients at h̃, of W_h and of b_h, through the tanh.",
             ("derivation", "code")),
    Question("1ab.B1", "1-b implementation", "The hand-written MLP on circles",
             "Train the hand-written network with mini-batch SGD; read its curves, and the "
             "effect of the learning rate, the batch size, and of averaging the gradient "
             "over the batch instead of summing it.", ("code", "figure", "comparison"),
             (preset("1ab-circles-manual"), sweep("1ab-circles-manual", "optim.lr=0.001,0.03,0.3"),
              sweep("1ab-circles-manual", "train.loss_reduction=mean,sum")),
             (R("94% test, loss 0.18", "circles, lr 0.1", data="circles",
                preset="1ab-circles-manual"),
              R("about 100 epochs to the best averaged, about 10 summed",
                "circles, gradients averaged against summed over the batch", data="circles"),
              R("lr 0.3 passes 90% soonest, then oscillates", "circles, 10 batches an epoch",
                data="circles"))),
    Question("1ab.B2", "1-b implementation", "With autograd",
             "The same training with the gradients from torch.autograd.", ("code", "figure"),
             (preset("1ab-circles-autograd"),),
             (R("the same curves as by hand", "circles", data="circles",
                preset="1ab-circles-autograd"),)),
    Question("1ab.B3", "1-b implementation", "With torch.nn layers",
             "The forward pass built from torch.nn layers.", ("code", "figure"),
             (preset("1ab-circles-nn"),),
             (R("best after about 150 epochs", "circles, torch's default initialization",
                data="circles", preset="1ab-circles-nn"),)),
    Question("1ab.B4", "1-b implementation", "With torch.optim",
             "The update done by a torch.optim optimizer.", ("code", "figure"),
             (preset("1ab-circles-optim"),),
             (R("best after about 300 epochs, the steadiest run", "circles", data="circles",
                preset="1ab-circles-optim"),)),
    Question("1ab.B5", "1-b implementation", "The MLP on MNIST",
             "The same network on MNIST.", ("code", "figure"), (preset("1ab-mnist"),),
             (R("high for so small a model, no number given", "MNIST", data="mnist",
                preset="1ab-mnist"),)),
    Question("1ab.B6", "1-b implementation", "SVMs on circles",
             "SVMs with each kernel and several C on the same data: their boundaries and "
             "accuracies.", ("code", "figure", "comparison"), (preset("1ab-svm"),),
             (R("RBF separates the rings; linear and polynomial about chance", "circles",
                data="circles", preset="1ab-svm"),)),
    # --- 1-cd: convolutional networks on CIFAR-10 --------------------------------------
    Question("1cd.Q1", "1-c network arithmetic", "One filter: output size and weights",
             "For one k x k filter with padding p and stride s on an x x y x z input: the "
             "output size, its weights, and the weights a fully connected layer would need "
             "for the same output.", ("derivation", "number"),
             (command(SUMMARY_CNN, "layers"),),
             (R("x' = ⌊(x + 2p - k)/s⌋ + 1; k·k·z weights + 1 bias", "one filter, depth 1 out"),)),
    Question("1cd.Q2", "1-c network arithmetic", "Convolution against fully connected",
             "What a convolution gains over a fully connected layer, and its main limit.",
             ("text",),
             references=(R("10¹² weights against 10⁸", "a 1000 x 1000 image into a "
                           "same-size layer: fully connected against 10 x 10 local patches, "
                           "before sharing"),)),
    Question("1cd.Q3", "1-c network arithmetic", "Why pooling",
             "What spatial pooling is for.", ("text",)),
    Question("1cd.Q4", "1-c network arithmetic", "A larger input image",
             "Does a CNN built for one image size run on a larger image, wholly or in part?",
             ("text",), (command("tinyvision summary cnn --input 3x64x64"), command(FCCONV))),
    Question("1cd.Q5", "1-c network arithmetic", "A fully connected layer as a convolution",
             "Show that a fully connected layer is a convolution of a particular shape.",
             ("derivation", "text"), (command(FCCONV),)),
    Question("1cd.Q6", "1-c network arithmetic", "The network made fully convolutional",
             "With every fully connected layer made a convolution, what does the network "
             "output on a larger image, and what is it good for?", ("text", "number"),
             (command(FCCONV),),
             (R("an (r+1) x (c+1) map of class scores", "r extra rows and c extra columns "
                "of input positions"),)),
    Question("1cd.Q7", "1-c network arithmetic", "Receptive fields",
             "The receptive fields of conv1's and conv2's neurons, deeper ones, and what "
             "they mean.", ("number", "text"), (command(SUMMARY_CNN, "receptive"),),
             (R("conv1 5 x 5", "kernel 5"),
              R("conv2 9 x 9", "stride 1, the pool between them left out"))),
    Question("1cd.Q8", "1-d the architecture", "A convolution that keeps the size",
             "The padding and stride that keep the spatial size of a 5 x 5 convolution.",
             ("number",), (command(SUMMARY_CNN, "layers"),),
             (R("stride 1, padding 2", "kernel 5: p = (k - 1)/2"),)),
    Question("1cd.Q9", "1-d the architecture", "A pooling that halves the size",
             "The padding and stride of a max-pooling that halves the spatial size.",
             ("number",), (command(SUMMARY_CNN, "layers"),),
             (R("kernel 2, stride 2, padding 0", "2 x 2 max-pooling"),)),
    Question("1cd.Q10", "1-d the architecture", "Each layer's size and weights",
             "Each layer's output size and number of weights, and where the weights are.",
             ("table", "text"), (command(SUMMARY_CNN, "layers"),),
             (R("conv1 2,432; conv2 51,264; conv3 102,464; fc4 1,025,000; fc5 10,010",
                "weights and biases, a 3 x 32 x 32 input"),
              R("fc4 about 86% of all", "weights and biases"))),
    Question("1cd.Q11", "1-d the architecture", "Weights against examples",
             "The total number of weights, against the number of training examples.",
             ("number", "text"), (command(SUMMARY_CNN, "params"),),
             (R("1,191,170", "weights and biases, a 3 x 32 x 32 input"),
              R("1,190,000", "the same without biases"),
              R("50,000 training images", "CIFAR-10's training split"))),
    Question("1cd.Q12", "1-d the architecture", "Against bag-of-words and an SVM",
             "The CNN's parameter count against the bag-of-words + SVM pipeline's.",
             ("number", "comparison"),
             (command("tinyvision arithmetic"), command(SUMMARY_CNN, "params")),
             (R("10,010", "(1000 + 1) x 10: a 1000-word vocabulary, 10 linear SVMs"),
              R("138,010", "the same plus the 1000 x 128 SIFT codebook"))),
    Question("1cd.Q13", "1-d learning", "Run the training code",
             "Read and run the training script.", ("code",), (preset("1cd-lenet-mnist"),),
             (R("first batch loss 2.3017, top-1 7.8%, top-5 50.8%", "MNIST, batch 128, the "
                "starter script's first logged batch", data="mnist"),
              R("469 batches", "60,000 images in batches of 128", data="mnist"))),
    Question("1cd.Q14", "1-d learning", "How train and test metrics differ",
             "Besides the data, how are the train loss and accuracy computed differently from "
             "the test ones?", ("text",), (preset("1cd-baseline"),)),
    Question("1cd.Q15", "1-d learning", "CIFAR-10 and the course CNN",
             "Train the course's network on CIFAR-10 until it converges.", ("code",),
             (preset("1cd-baseline"),),
             (R("70.46%", "CIFAR-10, 30 epochs, lr 0.05", data=CIFAR, epochs=30,
                preset="1cd-baseline"),
              R("about 70%", "CIFAR-10, batch 128, lr 0.1, 50 epochs", data=CIFAR, epochs=50,
                preset="1cd-baseline"),
              R("about 60%", "CIFAR-10, batch 128, lr 0.01", data=CIFAR,
                preset="1cd-baseline"))),
    Question("1cd.Q16", "1-d learning", "Learning rate and batch size",
             "What the learning rate and the batch size each do to training.",
             ("figure", "comparison", "text"), (study("1cd-lr"), study("1cd-batch-size")),
             (R("56% at lr 0.01, below lr 0.1 (underfits)", "CIFAR-10, batch 128", data=CIFAR),
              R("batch 32 noisier than 128, about the same final accuracy", "CIFAR-10",
                data=CIFAR),
              R("37 s an epoch at batch 8", "CIFAR-10, lr 0.1, an A100 GPU", data=CIFAR))),
    Question("1cd.Q17", "1-d learning", "The error before training",
             "The train and test error at the start of the first epoch, and what it means.",
             ("number", "text"), (preset("1cd-baseline"),),
             (R("about 10% accuracy (90% error)", "random weights, 10 classes"),
              R("loss 2.3017, about ln 10", "the first batch, 10 classes"))),
    Question("1cd.Q18", "1-d learning", "What goes wrong",
             "Read the curves: what happens, and what is it called?", ("figure", "text"),
             (preset("1cd-baseline"),),
             (R("test stalls near 70%, its loss rises again: overfitting", "CIFAR-10, batch "
                "128, lr 0.1, 50 epochs", data=CIFAR, epochs=50),
              R("test stalls near 60% from about epoch 30", "CIFAR-10, batch 128, lr 0.01",
                data=CIFAR))),
    Question("1cd.Q19", "1-d improving: normalization", "Standardized inputs",
             "Standardize each channel with the training set's mean and deviation; compare.",
             ("figure", "comparison"),
             (preset("1cd-standardize"), study("1cd-ablation", "baseline,standardize")),
             (R("76.78% (from 70.46%)", CIFAR_STACK + ", 30 epochs, lr 0.05", data=CIFAR,
                epochs=30, preset="1cd-standardize"),
              R("74% (from 69%)", "CIFAR-10, the course CNN", data=CIFAR,
                preset="1cd-standardize"))),
    Question("1cd.Q20", "1-d improving: normalization", "Statistics from the training set",
             "Why the mean and deviation come from the training split alone, and are reused "
             "on the other splits.", ("text",)),
    Question("1cd.Q21", "1-d improving: normalization", "Other normalizations",
             "Try other normalizations (ZCA whitening among them); explain and compare.",
             ("code", "figure", "comparison"), (study("1cd-normalization"),),
             (R("ZCA 82.0% against 76.6%, about 9 times slower", "CIFAR-10, the course CNN",
                data=CIFAR),
              R("standardization and GCN best, nearly equal; L1 poor", "CIFAR-10",
                data=CIFAR))),
    Question("1cd.Q22", "1-d improving: augmentation", "Random crops and flips",
             "Random crops and horizontal flips of the training images; compare.",
             ("figure", "comparison"),
             (preset("1cd-augment"), study("1cd-ablation", "standardize,augment")),
             (R("79.5%", CIFAR_STACK + ", 30 epochs, lr 0.05", data=CIFAR, epochs=30,
                preset="1cd-augment"),
              R("79.62%", "the same over 40 epochs", data=CIFAR, epochs=40,
                preset="1cd-augment"),
              R("about 80% (from 70%)", "CIFAR-10, RandomCrop(28) and flips", data=CIFAR,
                preset="1cd-augment"))),
    Question("1cd.Q23", "1-d improving: augmentation", "Is a flip always allowed",
             "When is a horizontal flip a valid augmentation, and when not?", ("text",)),
    Question("1cd.Q24", "1-d improving: augmentation", "What augmentation cannot do",
             "The limits of data augmentation.", ("text",)),
    Question("1cd.Q25", "1-d improving: augmentation", "Other augmentations",
             "Find and try other augmentations.", ("code", "figure"),
             (study("1cd-augmentation"),),
             (R("about 80%, train and test curves close", "CIFAR-10, random affine with the "
                "crop", data=CIFAR),)),
    Question("1cd.Q26", "1-d improving: optimization", "SGD with a decaying learning rate",
             "Train with SGD and a learning rate that decays; compare, stability included.",
             ("figure", "comparison"),
             (preset("1cd-schedule"), study("1cd-ablation", "augment,schedule")),
             (R("81.76%", CIFAR_STACK + ", 30 epochs, lr 0.1", data=CIFAR, epochs=30,
                preset="1cd-schedule"),
              R("80.35%", "the same at lr 0.05", data=CIFAR, epochs=30))),
    Question("1cd.Q27", "1-d improving: optimization", "Why the schedule helps",
             "Why a decaying learning rate (and momentum) helps.", ("text",),
             references=(R("gamma 0.95", "exponential decay per epoch"),)),
    Question("1cd.Q28", "1-d improving: optimization", "Other optimizers and schedules",
             "Try other variants of SGD and other schedules.", ("code", "figure", "comparison"),
             (study("1cd-optimizers"), study("1cd-schedules")),
             (R("polynomial levels off first, near 80% train / 70% test; exponential, step and "
                "cosine best", "CIFAR-10, the course CNN", data=CIFAR),
              R("Adagrad best without a schedule, Adam middling, AdamW and RMSprop worst",
                "CIFAR-10, the course CNN", data=CIFAR))),
    Question("1cd.Q29", "1-d improving: dropout", "Dropout",
             "Add dropout at fc4; compare.", ("figure", "comparison"),
             (preset("1cd-dropout"), study("1cd-ablation", "schedule,dropout")),
             (R("81.72%", CIFAR_STACK + ", 30 epochs, lr 0.1", data=CIFAR, epochs=30,
                preset="1cd-dropout"),
              R("83.51%", "the same over 40 epochs", data=CIFAR, epochs=40,
                preset="1cd-dropout"),
              R("about 85%", "CIFAR-10, dropout with a schedule", data=CIFAR))),
    Question("1cd.Q30", "1-d improving: dropout", "Regularization",
             "What regularization is, in general.", ("text",)),
    Question("1cd.Q31", "1-d improving: dropout", "Why dropout works",
             "The explanations given for dropout's effect.", ("text",)),
    Question("1cd.Q32", "1-d improving: dropout", "The dropout rate",
             "How the dropout probability changes the result.", ("text", "figure"),
             (study("1cd-dropout-rate"),),
             (R("small p overfits, large p curbs it, p = 1 learns nothing", "CIFAR-10, the "
                "course CNN", data=CIFAR),)),
    Question("1cd.Q33", "1-d improving: dropout", "Dropout at train and at test",
             "How the dropout layer behaves in training and in evaluation.", ("text",),
             references=(R("kept units scaled by 1/(1 - p) in training; the identity at test",
                           "PyTorch's dropout"),)),
    Question("1cd.Q34", "1-d improving: batch normalization", "Batch normalization",
             "Add batch normalization; compare.", ("figure", "comparison"),
             (preset("1cd-batchnorm"), study("1cd-ablation", "dropout,batchnorm")),
             (R("84.97%", "everything stacked: CIFAR-10, 40 epochs, lr 0.1", data=CIFAR,
                epochs=40, preset="1cd-batchnorm"),
              R("just under 80%", "CIFAR-10, batch norm with a schedule, no dropout",
                data=CIFAR))),
    # --- 1-e: vision transformers ------------------------------------------------------
    Question("1e.E1", "1-e self-attention", "Self-attention against convolution",
             "What self-attention sees that a convolution does not, and what it costs.",
             ("text",), (command(ATTENTION),),
             (R("O(n²) time and memory", "n tokens"),), alias="1e.attention-vs-conv"),
    Question("1e.E2", "1-e self-attention", "One attention head",
             "The equations of one head of self-attention, ending in an output projection, "
             "and its code.", ("derivation", "code"), (command(ATTENTION),),
             alias="1e.attention"),
    Question("1e.E3", "1-e multi-head", "Multi-head attention",
             "The equations of multi-head self-attention, and its code.",
             ("derivation", "code"), (command(ATTENTION),), alias="1e.multihead"),
    Question("1e.E4", "1-e transformer block", "The transformer block",
             "The block's equations (norms, attention, MLP, residuals), and its code.",
             ("derivation", "code"), (preset("1e-vit-mnist"),), alias="1e.block"),
    Question("1e.E5", "1-e the full ViT", "The class token",
             "What the class token is and why it is there.", ("text",), (command(ATTENTION),),
             alias="1e.cls-token"),
    Question("1e.E6", "1-e the full ViT", "The positional embedding",
             "What the positional embedding is and why it matters.", ("text", "figure"),
             (command(ATTENTION),), alias="1e.positions"),
    Question("1e.E7", "1-e the full ViT", "The ViT on MNIST",
             "Train the ViT on MNIST.", ("code", "figure"),
             (preset("1e-vit-mnist"), study("1e-vit-vs-cnn")),
             (R("96.97%", "the course's small ViT on MNIST", data="mnist",
                preset="1e-vit-mnist"),
              R("98.45%", "a ConvNet on MNIST", data="mnist", preset="1e-vit-vs-cnn/cnn")),
             alias="1e.vit-mnist"),
    Question("1e.E8", "1-e hyperparameters", "Embedding size",
             "How the embedding size changes training.", ("figure", "comparison"),
             (study("1e-embed-dim"),),
             (R("16 ends close to the others with fewer weights; 128 ends lowest and is the "
                "slowest", "MNIST, the course's ViT", data="mnist"),), alias="1e.embed-dim"),
    Question("1e.E9", "1-e hyperparameters", "Patch size",
             "How the patch size (the number of tokens) changes training.",
             ("figure", "comparison"), (study("1e-patch-size"),),
             (R("196, 4 and 1 patches", "patch 2, 14 and 28 on 28 x 28 images, plus the "
                "class token", data="mnist"),
              R("14 x 14 best; final accuracies close", "MNIST", data="mnist")),
             alias="1e.patch-size"),
    Question("1e.E10", "1-e hyperparameters", "Number of blocks",
             "How the depth changes training.", ("figure", "comparison"), (study("1e-blocks"),),
             (R("8 blocks: unsteady test loss, lower accuracy", "MNIST", data="mnist"),),
             alias="1e.blocks"),
    Question("1e.E11", "1-e hyperparameters", "Number of heads",
             "How the number of heads changes training.", ("figure", "comparison"),
             (study("1e-heads"),),
             (R("more heads, better train and test accuracy", "MNIST", data="mnist"),),
             alias="1e.heads"),
    Question("1e.E12", "1-e hyperparameters", "MLP size",
             "How the width of the block's MLP changes training.", ("figure", "comparison"),
             (study("1e-mlp-ratio"),),
             (R("no gain and no overfitting from a wider MLP", "MNIST", data="mnist"),),
             alias="1e.mlp-size"),
    Question("1e.E13", "1-e timm", "The input size of a large ViT",
             "What goes wrong when a large pretrained ViT meets MNIST, why, and whether a CNN "
             "has the same problem.", ("text",), (preset("1e-timm-scratch"),),
             (R("224 x 224 RGB", "vit_base_patch16_224's input, fixed by its patch "
                "embedding"),), alias="1e.timm-size"),
    Question("1e.E14", "1-e timm", "Transformers on small data",
             "Ideas for training a transformer on little data.", ("text",),
             alias="1e.small-data"),
    Question("1e.E15", "1-e timm", "A large ViT from scratch",
             "Train the large ViT from random weights on MNIST.", ("code", "figure"),
             (preset("1e-timm-scratch"),),
             (R("about 20% after 4 epochs (about 45 minutes), unstable",
                "vit_base_patch16_224 at 224 x 224, 3 channels, from scratch on MNIST",
                data="mnist", epochs=4, model=VIT_BASE, preset="1e-timm-scratch"),),
             alias="1e.timm-scratch"),
    Question("1e.E16", "1-e timm", "Fine-tuning the pretrained ViT",
             "Fine-tune the ImageNet-pretrained ViT on MNIST.", ("code", "figure"),
             (preset("1e-timm-pretrained"),),
             (R("far better than from scratch, no number given",
                "vit_base_patch16_224 at 224 x 224, pretrained, on MNIST", data="mnist",
                model=VIT_BASE, preset="1e-timm-pretrained"),), alias="1e.timm-pretrained"),
    Question("1e.E17", "1-e Fashion-MNIST", "The same on Fashion-MNIST",
             "Repeat the studies on Fashion-MNIST, past MNIST's ceiling.",
             ("figure", "comparison"), (preset("1e-vit-fashion"),),
             (R("curves level off near 80%", "the course's small ViT on Fashion-MNIST",
                data="fashion-mnist", preset="1e-vit-fashion"),), alias="1e.fashion"),
)
# fmt: on
