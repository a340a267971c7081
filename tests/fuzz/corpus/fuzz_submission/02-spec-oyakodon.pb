
D
$00000000-0000-4000-8000-000000000002Ä¢ „°4annot-dispatcher*g-1Ø
s-2spec-oyakodon*annotator-208BÑAn oyakodon fills a black lacquered bowl with a red interior, set on a light wooden tray. Soft-set egg has been poured over the white rice and covers most of its surface, with pale yellow curds running into the grains at the edges. I think the broth underneath is made with dashi. Pieces of chicken thigh, browned at the edges, sit in the egg together with thin strips of onion that have turned translucent. A few leaves of mitsuba are scattered on top of the egg, adding bright green points to the yellow surface. A pair of wooden chopsticks rests across the rim of the bowl, and a small dish of pickled ginger stands to its right on the tray.HÄ¢ „°4¢y
spec-oyakodon"oyakodon*donburi*	rice bowl2en-US:foodB
eggpoured overriceB
mitsubascattered oneggZg-1